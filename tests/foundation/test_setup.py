"""The setup API (MadMiner vocabulary), the setup file and its MadMiner interoperability."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from eftflow.errors import ConfigError, InputError, MorphingError
from eftflow.setup import EFTSetup, MadMiner


def madminer_style_setup():
    """The MadMiner tutorial's first lines, unchanged but for the import."""
    miner = MadMiner()
    miner.add_parameter(
        lha_block="dim6",
        lha_id=2,
        parameter_name="CWL2",
        morphing_max_power=2,
        param_card_transform="16.52*theta",
        parameter_range=(-20.0, 20.0),
    )
    miner.add_parameter(
        lha_block="dim6",
        lha_id=5,
        parameter_name="CPWL2",
        morphing_max_power=2,
        param_card_transform="16.52*theta",
        parameter_range=(-20.0, 20.0),
    )
    miner.add_benchmark({"CWL2": 0.0, "CPWL2": 0.0}, "sm")
    miner.add_benchmark({"CWL2": 15.2, "CPWL2": 0.1}, "w")
    miner.set_morphing(include_existing_benchmarks=True, max_overall_power=2)
    return miner


def test_api_translates_madminer_notebook(tmp_path):
    miner = madminer_style_setup()
    assert list(miner.benchmarks)[:2] == ["sm", "w"] and len(miner.benchmarks) == 6
    assert miner.parameters["CWL2"].card_value(1.0) == pytest.approx(16.52)
    miner.save(tmp_path / "setup.h5")
    other = EFTSetup.from_file(tmp_path / "setup.h5")
    assert list(other.benchmarks) == list(miner.benchmarks)
    np.testing.assert_array_equal(other.morphing_matrix, miner.morphing_matrix)
    assert other.parameters == miner.parameters


def test_file_layout_is_madminers(tmp_path):
    madminer_style_setup().save(tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["parameters/names"].dtype == np.dtype("S256")
        assert f["benchmarks/values"].shape == (6, 2)
        assert f["morphing/morphing_matrix"].shape == (6, 6)  # (n_components, n_benchmarks)
        assert f["morphing/components"].dtype == np.int64
        assert f["parameters/transforms"][0] == b"16.52*theta"
        assert "eftflow_version" in f.attrs


def test_systematics_round_trip(tmp_path):
    """MadMiner 0.9.6 crashes saving norm/pdf systematics and returns bytes on load; ours round-trip."""
    s = madminer_style_setup()
    s.add_systematics("norm", "lumi", norm_variation=1.05)
    s.add_systematics("scale", "scales", scale="muf", scale_variations=(0.5, 1.0, 2.0))
    s.add_systematics("pdf", "pdf", pdf_variation="NNPDF31")
    s.save(tmp_path / "s.h5")
    t = EFTSetup.from_file(tmp_path / "s.h5")
    assert t.systematics == s.systematics
    assert all(isinstance(x.value, str) for x in t.systematics.values())
    assert t.nuisance_parameters == s.nuisance_parameters
    nuis = t.nuisance_parameters["lumi_nuisance_param_0"]
    assert t.benchmarks[nuis.benchmark_positive].is_nuisance
    # nuisance benchmarks are stored after the physics ones and are not part of the basis
    assert t.benchmark_array().shape == (6, 2)


def test_finite_differences_round_trip(tmp_path):
    s = madminer_style_setup()
    s.finite_differences(epsilon=0.02)
    assert s.benchmarks["sm_plus_CWL2"].values["CWL2"] == pytest.approx(0.02)
    s.save(tmp_path / "s.h5")
    t = EFTSetup.from_file(tmp_path / "s.h5")
    assert t.finite_difference_benchmarks == s.finite_difference_benchmarks
    assert t.finite_difference_epsilon == 0.02


def test_bad_api_inputs():
    s = EFTSetup()
    s.add_parameter("a", 1, "x", parameter_range=(-1, 1))
    with pytest.raises(ConfigError, match="duplicate parameter"):
        s.add_parameter("a", 2, "x")
    s.add_benchmark({"x": 0}, "sm")
    with pytest.raises(ConfigError, match="duplicate benchmark"):
        s.add_benchmark({"x": 1}, "sm")
    with pytest.raises(ConfigError, match="unknown parameter 'y'"):
        s.add_benchmark({"y": 1}, "b")
    with pytest.raises(ConfigError, match="not plain arithmetic|not allowed"):
        EFTSetup().add_parameter(
            "a", 1, "z", param_card_transform="__import__('os').system('true')"
        )
    with pytest.raises(MorphingError, match="at least 3"):
        s.set_morphing(max_overall_power=2, n_benchmarks=2)


def test_singular_declared_basis():
    s = EFTSetup()
    s.add_parameter("a", 1, "x", parameter_range=(-1, 1))
    s.add_benchmark({"x": 0.5}, "b1")
    s.add_benchmark({"x": 0.5}, "b2")
    with pytest.raises(MorphingError, match="singular"):
        s.set_morphing(max_overall_power=2)


def test_read_setup_errors(tmp_path):
    from eftflow.store.setup_h5 import read_setup

    with pytest.raises(InputError, match="does not exist"):
        read_setup(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_setup(tmp_path / "text.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(InputError, match="parameters/names"):
        read_setup(tmp_path / "empty.h5")


# --- MadMiner interoperability (the real madminer package) -------------------------------------

madminer = pytest.importorskip("madminer")


def test_madminer_reads_eftflow_setup(tmp_path):
    ours = madminer_style_setup()
    ours.save(tmp_path / "s.h5")
    theirs = madminer.MadMiner()
    theirs.load(str(tmp_path / "s.h5"))
    assert list(theirs.benchmarks) == list(ours.benchmarks)
    rng = np.random.default_rng(0)
    for theta in rng.uniform(-20, 20, size=(5, 2)):
        np.testing.assert_allclose(
            theirs.morpher.calculate_morphing_weights(theta),
            ours.morpher.weights(theta),
            rtol=1e-10,
            atol=1e-10,
        )
        np.testing.assert_allclose(
            theirs.morpher.calculate_morphing_weight_gradient(theta),
            ours.morpher.gradients(theta),
            rtol=1e-9,
            atol=1e-10,
        )


def test_eftflow_reads_madminer_setup(tmp_path):
    theirs = madminer.MadMiner()
    theirs.add_parameter(
        lha_block="dim6",
        lha_id=2,
        parameter_name="a",
        morphing_max_power=2,
        parameter_range=(-1.0, 1.0),
    )
    theirs.add_parameter(
        lha_block="dim6",
        lha_id=3,
        parameter_name="b",
        morphing_max_power=2,
        parameter_range=(-1.0, 1.0),
    )
    theirs.add_benchmark({"a": 0.0, "b": 0.0}, "sm")
    theirs.set_morphing(include_existing_benchmarks=True, max_overall_power=2)
    theirs.save(str(tmp_path / "mm.h5"))
    ours = EFTSetup.from_file(tmp_path / "mm.h5")
    assert list(ours.benchmarks) == list(theirs.benchmarks)
    assert ours.parameters["a"].param_card_transform is None  # MadMiner's "_" placeholder
    for theta in np.random.default_rng(1).uniform(-1, 1, size=(5, 2)):
        np.testing.assert_allclose(
            ours.morpher.weights(theta),
            theirs.morpher.calculate_morphing_weights(theta),
            atol=1e-10,
        )


# --- CLI: bad inputs give one clear line and leave no output ------------------------------------


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "eftflow", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"morphing": {"colour": 1}}, "unknown key 'colour'"),
        ({"seed": "abc"}, "seed: expected integer"),
        ({"parameters": [{"name": "a"}, {"name": "a"}]}, "parameters[1].name: duplicate name"),
        (
            {
                "parameters": [{"name": "a"}],
                "benchmarks": [{"name": "s", "values": {}}, {"name": "s", "values": {}}],
            },
            "benchmarks[1].name: duplicate name",
        ),
        (
            {"parameters": [{"name": "a"}], "benchmarks": [], "morphing": {"n_benchmarks": 2}},
            "at least 3 are needed",
        ),
        (
            {
                "parameters": [{"name": "a"}],
                "benchmarks": [
                    {"name": "b1", "values": {"a": 0.5}},
                    {"name": "b2", "values": {"a": 0.5}},
                ],
            },
            "singular",
        ),
        (
            {"parameters": [{"name": "a", "param_card_transform": "__import__('os')"}]},
            "param_card_transform",
        ),
    ],
)
def test_cli_bad_inputs(tmp_path, config, expected):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    out = tmp_path / "out" / "setup.h5"
    r = run_cli(
        "setup",
        "--config",
        str(cfg),
        "-o",
        str(out),
        "--plot",
        str(tmp_path / "out" / "b.png"),
        cwd=tmp_path,
    )
    assert r.returncode == 2, r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1  # one line
    assert not out.exists()
    leftovers = list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    assert leftovers == []


def test_cli_setup_writes_file_and_plot(tmp_path):
    r = run_cli("setup", "-o", "s.h5", "--plot", "basis.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "basis.png").stat().st_size > 10_000
    s = EFTSetup.from_file(tmp_path / "s.h5")
    assert s.morpher.n_components == 6 and "lumi" in s.systematics


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, eftflow.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'pythia8mc', 'fastjet', 'dask.distributed', 'matplotlib', 'zarr', 'h5py', 'iminuit') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr
    assert "setup" in r.stdout
