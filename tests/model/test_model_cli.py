"""`eftflow build-model` + `eftflow infer` and `eftflow fit-model` end to end on a tiny trained
ensemble + a pyhf control region; bad inputs give one-line errors naming file and field."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from eftflow.cli import main

T1 = ["--threads", "1"]  # one torch thread: the test machines are shared


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory):
    from eftflow.inference.model.systematics import train_nuisance_network
    from eftflow.inference.model.toy import SystToy
    from eftflow.ml.train import TrainingConfig

    from .conftest import CR_WORKSPACE

    d = tmp_path_factory.mktemp("spec")
    toy = SystToy(kappa=0.2)
    rng = np.random.default_rng(5)
    cfg = TrainingConfig(
        method="alice",
        hidden=(8, 8),
        n_epochs=2,
        batch_size=256,
        validation_split=0.2,
        early_stopping=False,
    )
    train_nuisance_network(toy, 4000, cfg, d, rng, n_members=2)
    np.save(d / "pool.npy", rng.normal(size=(400, 1)))
    (d / "cr.json").write_text(json.dumps(CR_WORKSPACE))
    spec = {
        "poi": "mu",
        "device": "cpu",
        "parameters": [
            {"name": "theta_1", "init": 0.0, "lower": -0.5, "upper": 0.5, "fixed": True},
            {"name": "nu_shape", "init": 0.0, "lower": -5, "upper": 5, "constraint": "normal"},
        ],
        "binned": [{"name": "cr", "workspace": "cr.json"}],
        "unbinned": [
            {
                "name": "sr",
                "pool": "pool.npy",
                "spread": {"name": "gamma_sr"},
                "processes": [
                    {
                        "name": "sig",
                        "ensemble": "nu_network/ensemble",
                        "parameters": ["theta_1", "nu_shape"],
                        "rate": 500.0,
                        "normfactors": ["mu"],
                        "normsys": {"nu_norm": [1.1, 0.909]},
                    }
                ],
            }
        ],
        "data": "asimov",
        "asimov": {"mu": 1.0},
        "inference": {
            "profiles": ["mu"],
            "contours": [["mu", "nu_shape"]],
            "nvalues": 5,
            "contour_points": 6,
        },
    }
    (d / "spec.yaml").write_text(yaml.safe_dump(spec))
    return d


def test_model_cli_fit_model(spec_dir):
    out = spec_dir / "out"
    assert main(["fit-model", str(spec_dir / "spec.yaml"), "-o", str(out), *T1]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["closure"]["passed"]
    assert res["fit"]["values"][res["parameters"].index("mu")] == pytest.approx(1.0, abs=1e-3)
    assert {p["name"] for p in res["pulls"]} >= {"nu_shape", "nu_norm", "gamma_sr"}
    assert res["impacts"]["mu"][0]["name"] in ("nu_norm", "nu_shape", "gamma_sr")
    for f in ("pulls.png", "impacts_mu.png", "profile_mu.png", "contour_mu_nu_shape.png"):
        assert (out / "plots" / f).stat().st_size > 0
    # fit-model = build-model + infer: the built model is kept next to the result
    assert json.loads((out / "model" / "model.json").read_text())["closure"]["passed"]


def test_model_cli_bad_spec_leaves_nothing(spec_dir):
    bad = spec_dir / "bad.yaml"
    spec = yaml.safe_load((spec_dir / "spec.yaml").read_text())
    spec["unbinned"][0]["processes"][0]["parameters"] = ["theta_1"]  # without the nuisance
    bad.write_text(yaml.safe_dump(spec))
    out = spec_dir / "bad_out"
    assert main(["fit-model", str(bad), "-o", str(out), *T1]) != 0
    assert not out.exists()
    spec["colour"] = "red"
    bad.write_text(yaml.safe_dump(spec))
    assert main(["fit-model", str(bad), "-o", str(out), *T1]) != 0
    assert not out.exists()


def test_model_cli_build_model_then_infer(spec_dir, tmp_path):
    spec = yaml.safe_load((spec_dir / "spec.yaml").read_text())
    spec["inference"].update(contours=[], toys={"n_toys": 40, "seed": 3}, cls=False)
    (spec_dir / "spec_toys.yaml").write_text(yaml.safe_dump(spec))
    built = tmp_path / "built"
    assert main(["build-model", str(spec_dir / "spec_toys.yaml"), "-o", str(built), *T1]) == 0
    desc = json.loads((built / "model.json").read_text())
    assert desc["format"] == "eftflow-model/1" and desc["closure"]["passed"]
    assert desc["poi"] == ["mu"]
    names = {p["name"]: p for p in desc["parameters"]}
    assert names["nu_shape"]["constraint"] == "normal" and names["theta_1"]["fixed"]
    # absolute paths and hashes of every referenced input
    fields = {i["field"]: i for i in desc["inputs"]}
    assert set(fields) == {
        "binned[0].workspace",
        "unbinned[0].pool",
        "unbinned[0].processes[0].ensemble",
    }
    pool = fields["unbinned[0].pool"]
    assert pool["path"] == str((spec_dir / "pool.npy").resolve()) and len(pool["sha256"]) == 64
    assert desc["spec"]["unbinned"][0]["processes"][0]["ensemble"].startswith("/")
    # the binned part as a pyhf workspace inside the model directory: pyhf reads it and agrees
    from eftflow.inference.model import from_pyhf

    from .conftest import CR_WORKSPACE

    ws = json.loads((built / "binned" / "cr.json").read_text())
    assert [c["name"] for c in ws["channels"]] == ["cr"]
    hf = from_pyhf(str(built / "binned" / "cr.json"))
    pm = hf.pyhf_model()
    pars = np.array([0.3, 1.1])  # nu_norm, mu_bkg
    data = list(hf.bins_for_pyhf(hf.observed, pm)) + pm.config.auxdata
    ours = from_pyhf(CR_WORKSPACE).logpdf(pars[None])[0]
    assert float(pm.logpdf(hf.pars_for_pyhf(pars, pm), data)[0]) == pytest.approx(ours, rel=1e-10)

    out = tmp_path / "inference"
    assert main(["infer", str(built), "-o", str(out), *T1]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["closure"]["passed"] and res["model_dir"] == str(built.resolve())
    assert res["fit"]["values"][res["parameters"].index("mu")] == pytest.approx(1.0, abs=1e-3)
    assert res["fit"]["ngrad"] > 0  # the autograd gradient reached the minimiser
    assert res["minos"]["mu"]["errn"] > 0 and res["minos"]["mu"]["errp"] > 0
    assert res["toys"]["n_toys"] == 40 and set(res["toys"]["coverage"]["mu"]) == {"0.68", "0.95"}
    for f in ("pulls.png", "impacts_mu.png", "profile_mu.png", "coverage_mu.png"):
        assert (out / "plots" / f).stat().st_size > 0

    # a referenced input that changed after build-model is refused
    changed = tmp_path / "changed"
    import shutil

    shutil.copytree(spec_dir, changed, ignore=shutil.ignore_patterns("out*", "bad*"))
    assert (
        main(["build-model", str(changed / "spec.yaml"), "-o", str(built), *T1, "--skip-closure"])
        == 0
    )
    np.save(changed / "pool.npy", np.zeros((400, 1)))
    assert main(["infer", str(built), "-o", str(tmp_path / "stale"), *T1]) == 2
    assert not (tmp_path / "stale").exists()
    # so is the model's own copy of a binned workspace, edited or removed after build-model
    from eftflow.errors import InputError
    from eftflow.inference.model.built import load_model_dir

    copy = built / "binned" / "cr.json"
    edited = json.loads(copy.read_text())
    edited["observations"][0]["data"][0] += 1
    copy.write_text(json.dumps(edited))
    with pytest.raises(InputError, match="binned.0..workspace: the model's copy .* changed") as e:
        load_model_dir(built)
    assert e.value.field == "inputs[0].copied_to" and e.value.file.endswith("model.json")
    copy.unlink()
    with pytest.raises(InputError, match="copy .* is missing"):
        load_model_dir(built)


def _bad(spec_dir, tmp_path, capsys, edit, *, name="bad.yaml", files=None):
    """Write an edited spec, run build-model and fit-model on it: exit 2, one line naming the
    file and the field, no output directory."""
    spec = yaml.safe_load((spec_dir / "spec.yaml").read_text())
    for f in ("pool.npy", "nu_network"):
        (tmp_path / f).symlink_to(spec_dir / f)
    for fname, content in (files or {}).items():
        (tmp_path / fname).write_text(json.dumps(content))
    if (tmp_path / "cr.json").exists() is False:
        (tmp_path / "cr.json").symlink_to(spec_dir / "cr.json")
    edit(spec)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    lines = []
    for cmd in ("build-model", "fit-model"):
        out = tmp_path / f"out_{cmd}"
        capsys.readouterr()
        assert main([cmd, str(path), "-o", str(out), *T1]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("eftflow: error: "), err
        assert not out.exists()
        lines.append(err[0])
    assert lines[0] == lines[1]
    return lines[0]


def test_model_cli_workspace_with_unknown_modifier(spec_dir, tmp_path, capsys):
    from .conftest import CR_WORKSPACE

    ws = json.loads(json.dumps(CR_WORKSPACE))
    ws["measurements"][0]["config"]["parameters"] = [{"name": "lumi_typo", "bounds": [[0, 2]]}]
    msg = _bad(spec_dir, tmp_path, capsys, lambda s: None, files={"cr.json": ws})
    assert str(tmp_path / "cr.json") in msg
    assert "measurements.config.parameters" in msg and "'lumi_typo'" in msg


def test_model_cli_workspace_with_unknown_sample_or_channel(spec_dir, tmp_path, capsys):
    from .conftest import CR_WORKSPACE

    ws = json.loads(json.dumps(CR_WORKSPACE))
    ws["observations"].append({"name": "sr_typo", "data": [1.0, 2.0]})
    msg = _bad(spec_dir, tmp_path, capsys, lambda s: None, files={"cr.json": ws})
    assert str(tmp_path / "cr.json") in msg and "observations[1].name" in msg
    assert "unknown channel 'sr_typo'" in msg
    ws = json.loads(json.dumps(CR_WORKSPACE))
    ws["channels"][0]["samples"].append(dict(ws["channels"][0]["samples"][0]))
    (tmp_path / "cr.json").unlink()
    (tmp_path / "cr.json").write_text(json.dumps(ws))
    for f in ("pool.npy", "nu_network"):
        (tmp_path / f).unlink()
    msg = _bad(spec_dir, tmp_path, capsys, lambda s: None)
    assert "channels[0].samples[1].name" in msg and "'bkg' appears twice" in msg


def test_model_cli_estimator_without_the_declared_nuisance(spec_dir, tmp_path, capsys):
    def edit(spec):  # the network takes (theta_1, nu_shape): the spec feeds it theta_1 only
        spec["unbinned"][0]["processes"][0]["parameters"] = ["theta_1"]

    msg = _bad(spec_dir, tmp_path, capsys, edit)
    assert str(tmp_path / "bad.yaml") in msg
    assert "unbinned[0].processes[0].parameters" in msg and "without" in msg


def test_model_cli_model_without_poi(spec_dir, tmp_path, capsys):
    from .conftest import CR_WORKSPACE

    ws = json.loads(json.dumps(CR_WORKSPACE))
    ws["measurements"][0]["config"].pop("poi")

    def edit(spec):
        spec.pop("poi")
        spec["unbinned"][0]["processes"][0]["normfactors"] = []
        spec["asimov"] = {}

    msg = _bad(spec_dir, tmp_path, capsys, edit, files={"cr.json": ws})
    assert str(tmp_path / "bad.yaml") in msg
    assert ": poi: the model has no parameter of interest" in msg


def test_model_cli_toys_outside_bounds(spec_dir, tmp_path, capsys):
    def edit(spec):
        spec["inference"]["toys"] = {"n_toys": 50, "truth": {"mu": 20.0}}

    msg = _bad(spec_dir, tmp_path, capsys, edit)
    assert str(tmp_path / "bad.yaml") in msg
    assert "inference.toys.truth.mu" in msg and "outside its bounds [0, 10]" in msg


# -- the workflow's own model: pool and L·σ(θ) from a store and the setup's morphing ------------
@pytest.fixture(scope="module")
def morph_store(tmp_path_factory):
    """A combined store whose events carry exact morphing weights W_ib = Σ_c c_ic C_c(θ_b)."""
    from eftflow.generate.toy import toy_setup
    from eftflow.physics.morphing import component_values
    from eftflow.store.events import EventStoreWriter

    d = tmp_path_factory.mktemp("morph")
    st = toy_setup()
    st.save(d / "setup.h5")
    rng = np.random.default_rng(3)
    n, comps = 100, st.morpher.components
    c = rng.uniform(0.5, 1.0, size=(n, len(comps))) * np.where(comps.sum(1) == 0, 1.0, 0.1)
    w = c @ component_values(st.benchmark_array(), comps).T  # (n, n_benchmarks)
    x = rng.normal(size=(n, 3))
    parts = {"train": [0, 60], "validation": [60, 80], "test": [80, 100]}
    names = [b.name for b in st.physics_benchmarks()]
    with EventStoreWriter(
        d / "events.zarr", ["a", "b", "c"], names, attrs={"partitions": parts}
    ) as wr:
        wr.append(observables=x, weights=w, sampling_benchmark=np.full(n, -1))
    return d, st, c, x, w


def test_model_morphing_rate_and_weighted_pool_close_on_exact_weights(morph_store):
    import torch

    from eftflow.inference.model.store_source import MorphingRate, pool_from_store
    from eftflow.physics.morphing import component_values

    d, st, c, x, w = morph_store
    rate = MorphingRate.from_store(d / "setup.h5", d / "events.zarr", 50.0)
    thetas = np.array([[0.0, 0.0], [0.3, -0.2], [-0.7, 0.9]])
    truth = 50.0 * (component_values(thetas, st.morpher.components) @ c.sum(0))
    pars = torch.tensor(thetas, dtype=torch.float64, requires_grad=True)
    nu = rate(pars)
    np.testing.assert_allclose(nu.detach().numpy(), truth, rtol=1e-10)
    np.testing.assert_allclose(rate.cross_section(thetas) * 50.0, truth, rtol=1e-10)
    (g,) = torch.autograd.grad(nu.sum(), pars, create_graph=True)  # finite at θ = 0
    (h,) = torch.autograd.grad(g[0, 0], pars)
    assert torch.isfinite(g).all() and torch.isfinite(h).all()
    eps = 1e-6
    num = (rate.cross_section([[eps, 0.0]]) - rate.cross_section([[-eps, 0.0]])) * 50.0 / 2 / eps
    np.testing.assert_allclose(g[0, 0].item(), num[0], rtol=1e-6)
    # the pool: test events, the chosen columns, weights at θ_ref (here the SM benchmark)
    pool, a = pool_from_store(
        d / "events.zarr", partition="test", observables=["c", "a"], setup=d / "setup.h5"
    )
    np.testing.assert_array_equal(pool, x[80:, [2, 0]])
    np.testing.assert_allclose(a / a.sum(), w[80:, 0] / w[80:, 0].sum(), rtol=1e-12)


def test_model_store_pool_and_rate_errors_name_the_field(morph_store, tmp_path, capsys):
    from eftflow.errors import ConfigError, InputError
    from eftflow.inference.model.spec import build_model

    d = morph_store[0]
    proc = {"name": "s", "ensemble": "missing_ensemble", "parameters": ["theta_1", "theta_2"]}
    region = {"name": "sr", "store": str(d / "events.zarr"), "processes": [proc]}
    spec = {"unbinned": [region], "_base": str(tmp_path), "_file": "m.yaml"}
    region["observables"] = ["a", "nope"]
    with pytest.raises(InputError, match="no observable 'nope'") as err:
        build_model(spec)
    assert err.value.file == "m.yaml" and err.value.field == "unbinned[0].observables"
    region["observables"] = None
    region["pool_weights"] = {"setup": str(d / "setup.h5"), "theta": "no_such_benchmark"}
    with pytest.raises(InputError, match="unknown benchmark") as err:
        build_model(spec)
    assert err.value.field == "unbinned[0].pool_weights.theta"
    del region["pool_weights"]
    proc["rate"] = {"setup": str(d / "setup.h5"), "store": str(d / "events.zarr")}
    with pytest.raises(ConfigError, match="missing 'luminosity'") as err:
        build_model(spec)
    assert err.value.field == "unbinned[0].processes[0].rate"
    proc["rate"] |= {"luminosity": 10.0, "partition": "nope"}
    with pytest.raises(InputError, match="unknown partition") as err:
        build_model(spec)
    assert err.value.field.startswith("unbinned[0].processes[0].rate")
    # write-model-spec on a directory that is no ensemble: one line, nothing written
    out = tmp_path / "spec.yaml"
    args = ["write-model-spec", "--store", str(d / "events.zarr"), "--setup", str(d / "setup.h5")]
    assert main([*args, "--ensemble", str(tmp_path), "-o", str(out)]) == 2
    assert "no member_0.json" in capsys.readouterr().err and not out.exists()


def test_model_demo_spec_options_and_bad_poi():
    from eftflow.errors import ConfigError
    from eftflow.inference.model.demo import demo_spec

    kw = dict(
        parameters=[("W", -1e-3, 1e-3), ("Y", -2e-3, 2e-3)],
        observables=["m_ll", "pt_ll"],
        normsys={"lumi": 1.02},
        store="../combine_events/events.zarr",
        setup="../setup/setup.h5",
        ensemble="../train_ratio_ensemble",
        reference="sm",
    )
    spec = demo_spec(**kw, options={"fixed": ["Y"], "n_toys": 30, "max_events": 500})
    (region,) = spec["unbinned"]
    (proc,) = region["processes"]
    assert spec["poi"] == "W" and spec["asimov"] == {"W": 0.0, "Y": 0.0}
    assert [p.get("fixed", False) for p in spec["parameters"]] == [False, True]
    assert spec["parameters"][1]["upper"] == 2e-3 and region["max_events"] == 500
    assert proc["normsys"]["lumi"] == [1.02, 1 / 1.02] and proc["parameters"] == ["W", "Y"]
    assert proc["rate"]["luminosity"] == 100000.0 and region["pool_weights"]["theta"] == "sm"
    assert spec["inference"]["contours"] == [] and spec["inference"]["toys"]["n_toys"] == 30
    assert demo_spec(**kw, options={})["inference"]["contours"] == [["W", "Y"]]
    assert "toys" not in demo_spec(**kw, options={"n_toys": 0})["inference"]
    with pytest.raises(ConfigError, match="'Z' is no parameter") as err:
        demo_spec(**kw, options={"poi": "Z"})
    assert err.value.field == "model.demo.poi"
    with pytest.raises(ConfigError, match="cannot be fixed"):
        demo_spec(**kw, options={"poi": "W", "fixed": ["W"]})
