"""The madgraph backend end to end against the fake MG5_aMC (tests/generate/fake_mg5)."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from eftflow.errors import BackendError, ConfigError
from eftflow.generate.lhe import LHEReader
from eftflow.generate.madgraph import MadGraphGenerator
from eftflow.generate.seeds import job_seed
from eftflow.physics.morphing import Morpher
from eftflow.setup import EFTSetup

sys.path.insert(0, str(Path(__file__).parent / "fake_mg5"))
import fake_core  # noqa: E402
from harness import eft_setup, fake_calls, install_fake_mg5, mg_job  # noqa: E402


@pytest.fixture
def mg(tmp_path):
    return install_fake_mg5(tmp_path / "MG5_aMC_v3_5_7")


def _lhe_text(path: Path) -> str:
    with gzip.open(path, "rt") as fh:
        return fh.read()


def _exact_sigma(mg_dir: Path, setup, bench: str) -> float:
    """σ of the fake model at a benchmark, from the fake's own analytic formula."""
    model = fake_core.Model(mg_dir / "models" / "eft_ee")
    card = fake_core.parse_param_card(model.default_card)
    for p in setup.parameters.values():
        card[(p.lha_block.lower(), p.lha_id)] = p.card_value(setup.benchmarks[bench].values[p.name])
    return model.sigma(card, 1000.0**2)


def test_end_to_end_cards_weights_and_provenance(tmp_path, mg):
    setup = eft_setup(2, transform="2*theta", extra={"probe": {"c1": 0.4, "c2": -0.3}})
    job = mg_job(tmp_path, mg, setup, n_events=400, seed=12345, use_syst=False)
    job.sampling_benchmark = "probe"
    res = MadGraphGenerator().generate(job)
    out = tmp_path / "sm_0.lhe.gz"
    assert res.output == out and out.is_file() and res.n_events == 400
    # no work directory left behind; the log is kept next to the output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "MG5_aMC_v3_5_7",
        "mg_cache",
        "sm_0.lhe.gz",
        "sm_0.lhe.gz.json",
        "sm_0.lhe.gz.log",
    ]
    reader = LHEReader(out, benchmarks=list(setup.benchmarks))
    hdr = reader.header
    # run card: nevents, iseed = the job's seed, use_syst, event_norm = sum
    assert hdr.run_card["nevents"] == "400" and hdr.run_card["iseed"] == "12345"
    assert hdr.run_card["use_syst"] == "False" and hdr.event_norm == "sum"
    # param card at the sampling benchmark through the transform (c1 = 2θ), every entry set
    slha = fake_core.parse_param_card(hdr.param_card)
    assert slha[("dim6", 2)] == pytest.approx(0.8, rel=1e-12)
    assert slha[("dim6", 3)] == pytest.approx(-0.3, rel=1e-12)
    assert slha[("dim6", 4)] == pytest.approx(0.3)  # not a setup parameter: model default kept
    # reweight card: change helicity False first, one launch per benchmark, every parameter set
    log = (tmp_path / "sm_0.lhe.gz.log").read_text()
    rw = [ln[6:] for ln in log.splitlines() if ln.startswith(("INFO: launch", "INFO:     set"))]
    assert "INFO: change helicity False\nINFO: change mode LO\nINFO: launch --rwgt_name=sm" in log
    assert rw.count("    set dim6 2 0.8") == 1 and "launch --rwgt_name=probe" in rw
    assert sum(1 for r in rw if r.startswith("launch")) == len(setup.benchmarks)
    # weights: one per benchmark, ids = benchmark names, Σ = σ within the MC error
    assert hdr.weight_ids == list(setup.benchmarks)
    ev = reader.read()
    w = reader.benchmark_weights(ev)
    assert w.shape == (400, len(setup.benchmarks))
    k_probe = list(setup.benchmarks).index("probe")
    np.testing.assert_allclose(w[:, k_probe], ev.xwgtup, rtol=1e-7)  # sampling point = XWGTUP
    for k, name in enumerate(setup.benchmarks):
        assert res.cross_sections[name] == pytest.approx(w[:, k].sum(), rel=1e-12)
        exact = _exact_sigma(mg, setup, name)
        assert abs(res.cross_sections[name] - exact) < 4 * res.cross_section_errors[name] + 1e-6
    # provenance sidecar
    meta = json.loads((tmp_path / "sm_0.lhe.gz.json").read_text())
    assert meta["generator"] == "madgraph" and meta["generator_version"] == "3.5.7"
    assert meta["iseed"] == 12345 and meta["sampling_benchmark"] == "probe"
    assert set(meta["cards_sha256"]) == {
        "proc_card_mg5.dat",
        "run_card.dat",
        "param_card.dat",
        "reweight_card.dat",
    }
    assert meta["cross_sections"] == res.cross_sections


def test_morphing_closure(tmp_path, mg, monkeypatch):
    """Per-event weights at a non-basis benchmark = morphing of the basis weights (1e-10)."""
    basis_setup = eft_setup(2, transform="0.5*theta + 0.0")
    components, basis = basis_setup.components, basis_setup.benchmark_array()
    setup = EFTSetup()
    for p in basis_setup.parameters.values():
        setup.add_parameter(p.lha_block, p.lha_id, p.name, p.param_card_transform, 2, (-1, 1))
    for name, row in zip(basis_setup.benchmarks, basis):
        setup.add_benchmark(dict(zip(setup.parameter_names, row)), name, verbose=False)
    probe = np.array([0.7, -0.45])
    setup.add_benchmark(dict(zip(setup.parameter_names, probe)), "probe", verbose=False)
    weights_morph = Morpher(components, basis).weights(probe)

    # MadGraph writes 8 significant digits; the fake can write 17 to test the machinery exactly
    monkeypatch.setenv("FAKE_MG5_WEIGHT_DIGITS", "16")
    res = MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=300))
    w = LHEReader(res.output, benchmarks=list(setup.benchmarks)).read().weights
    morphed = w[:, :-1] @ weights_morph
    np.testing.assert_allclose(morphed, w[:, -1], rtol=1e-10)
    assert np.abs(w[:, -1] / w[:, 0] - 1).max() > 0.01  # the probe really differs from sm

    # MadGraph's own 8-digit format: closure to the rounding
    monkeypatch.delenv("FAKE_MG5_WEIGHT_DIGITS")
    job = mg_job(tmp_path, mg, setup, n_events=300, job=1)
    w = LHEReader(MadGraphGenerator().generate(job).output).read().weights
    tol = 1e-7 * np.abs(w[:, :-1]) @ np.abs(weights_morph)
    assert np.all(np.abs(w[:, :-1] @ weights_morph - w[:, -1]) <= tol + 1e-7 * w[:, -1])


def test_same_seed_identical_events_and_unique_job_seeds(tmp_path, mg):
    setup = eft_setup(1)
    gen = MadGraphGenerator()
    a = gen.generate(mg_job(tmp_path / "a", mg, setup, seed=job_seed(7, "sm", 0)))
    b = gen.generate(mg_job(tmp_path / "b", mg, setup, seed=job_seed(7, "sm", 0)))
    c = gen.generate(mg_job(tmp_path / "c", mg, setup, seed=job_seed(7, "sm", 1), job=1))
    assert _lhe_text(a.output) == _lhe_text(b.output)
    assert _lhe_text(a.output) != _lhe_text(c.output)
    seeds = {job_seed(7, s, j) for s in ("sm", "bsm") for j in range(50)}
    assert len(seeds) == 100
    assert a.metadata["iseed"] == job_seed(7, "sm", 0) != c.metadata["iseed"]
    iseeds = [ln.split()[-1] for ln in fake_calls(mg) if ln.startswith("generate_events")]
    assert iseeds == [str(job_seed(7, "sm", 0))] * 2 + [str(job_seed(7, "sm", 1))]


def test_concurrent_jobs_share_one_cached_output(tmp_path, mg):
    setup = eft_setup(1)
    errors, results = [], []

    def run(i):
        try:
            job = mg_job(tmp_path, mg, setup, n_events=50, seed=100 + i, job=i)
            results.append(MadGraphGenerator().generate(job))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert sum(1 for c in fake_calls(mg) if c.startswith("output")) == 1
    assert len({r.output for r in results}) == 4
    # a later job reuses the cache too
    MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=10, job=9))
    assert sum(1 for c in fake_calls(mg) if c.startswith("output")) == 1


def _assert_nothing_left(tmp_path: Path, name: str = "sm_0.lhe.gz"):
    assert not (tmp_path / name).exists()
    assert not (tmp_path / f"{name}.json").exists()
    assert not list(tmp_path.glob(f".{name}*"))


def test_unknown_model_fails_with_log_lines(tmp_path, mg):
    job = mg_job(tmp_path, mg, eft_setup(1), model="nosuch_model")
    with pytest.raises(BackendError) as err:
        MadGraphGenerator().generate(job)
    msg = str(err.value)
    assert 'Command "import model nosuch_model" interrupted with error:' in msg
    assert "Model not found locally" in msg and "output.log" in msg and "exits 0" in msg
    _assert_nothing_left(tmp_path)
    assert not list((tmp_path / "mg_cache").glob("*/complete.json"))


def test_failing_run_exit_0_broken_param_card(tmp_path, mg):
    shutil.copytree(mg / "models" / "eft_ee", mg / "models" / "broken")
    card = mg / "models" / "broken" / "param_card.dat"
    card.write_text(card.read_text() + "BLOCK QNUMBERS 9000005\n      1 not_a_number # bad\n")
    job = mg_job(tmp_path, mg, eft_setup(1), model="broken")
    with pytest.raises(BackendError) as err:
        MadGraphGenerator().generate(job)
    msg = str(err.value)
    assert 'Command "generate_events run_sm_0 -f" interrupted with error:' in msg
    assert "InvalidParamCard" in msg and "ME5_debug" in msg
    assert err.value.file == str(tmp_path / "sm_0.lhe.gz.log")
    assert "interrupted" in (tmp_path / "sm_0.lhe.gz.log").read_text()
    _assert_nothing_left(tmp_path)


def test_failing_run_bad_run_card_setting(tmp_path, mg):
    job = mg_job(tmp_path, mg, eft_setup(1), run_card={"event_norm": "bogus"})
    with pytest.raises(BackendError, match="InvalidRunCard : event_norm bogus is not valid"):
        MadGraphGenerator().generate(job)
    _assert_nothing_left(tmp_path)


def test_fake_exits_0_on_nevents_0(tmp_path, mg):
    """The fake itself: a run card with nevents = 0 fails the MadGraph way (exit 0, no LHE)."""
    import subprocess

    MadGraphGenerator().generate(mg_job(tmp_path, mg, eft_setup(1), n_events=5))
    proc = next((tmp_path / "mg_cache").glob("*/proc"))
    work = tmp_path / "copy"
    shutil.copytree(proc, work)
    rc = work / "Cards" / "run_card.dat"
    rc.write_text(rc.read_text().replace("10000 = nevents", "0 = nevents"))
    run = subprocess.run(
        [str(work / "bin" / "generate_events"), "r1", "-f"],
        cwd=work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0
    assert 'Command "generate_events r1 -f" interrupted with error:' in run.stdout
    assert "nevents should be positive" in run.stdout and (work / "ME5_debug").is_file()
    assert not (work / "Events" / "r1" / "unweighted_events.lhe.gz").exists()


def test_missing_install_and_bad_versions(tmp_path, mg, monkeypatch):
    setup = eft_setup(1)
    with pytest.raises(BackendError, match="directory does not exist") as err:
        MadGraphGenerator().generate(mg_job(tmp_path, tmp_path / "nowhere", setup))
    assert err.value.file == str(tmp_path / "nowhere")
    monkeypatch.delenv("MG5_HOME", raising=False)
    with pytest.raises(ConfigError, match="MG5_HOME"):
        MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, mg_dir=None))
    (mg / "VERSION").write_text("version = 3.4.2\n")
    with pytest.raises(
        BackendError, match=r"3\.4\.2 is not supported; supported: 3\.5\.x, 3\.6\.x"
    ):
        MadGraphGenerator().generate(mg_job(tmp_path, mg, setup))
    (mg / "VERSION").write_text("version = 3.6.0\n")
    monkeypatch.setenv("MG5_HOME", str(mg))
    res = MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, n_events=10, mg_dir=None))
    assert res.metadata["generator_version"] == "3.6.0"


def test_parameter_without_lha_entry(tmp_path, mg):
    setup = EFTSetup()
    setup.add_parameter("dim6", 2, "c1", morphing_max_power=2, parameter_range=(-1, 1))
    setup.add_parameter("dim6", 9, "cX", morphing_max_power=2, parameter_range=(-1, 1))
    setup.add_benchmark({}, "sm")
    with pytest.raises(ConfigError) as err:
        MadGraphGenerator().generate(mg_job(tmp_path, mg, setup))
    msg = str(err.value)
    assert "parameter 'cX'" in msg and "BLOCK DIM6 entry 9" in msg
    assert err.value.field == "parameters.cX.lha_block" and err.value.file.endswith(
        "param_card.dat"
    )
    _assert_nothing_left(tmp_path)
    assert not any(c.startswith("generate_events") for c in fake_calls(mg))


def test_bad_options(tmp_path, mg):
    setup = eft_setup(1)
    with pytest.raises(ConfigError, match="iseed is set by eftflow"):
        MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, run_card={"iseed": 3}))
    job = mg_job(tmp_path, mg, setup)
    job.output = tmp_path / "x.lhe"
    with pytest.raises(ConfigError, match=r"must end in \.lhe\.gz"):
        MadGraphGenerator().generate(job)
    with pytest.raises(ConfigError, match="no process given"):
        MadGraphGenerator().generate(mg_job(tmp_path, mg, setup, process=[]))


def test_invariants_via_cli(tmp_path, mg):
    """``eftflow generate-events`` with backend madgraph: weight ids = physics benchmarks in setup
    order, Σ weights ≈ σ(θ_b) of the fake's closed form."""
    from eftflow.cli import main

    setup = eft_setup(2)
    setup.add_systematics("norm", "lumi", norm_variation=1.02)
    setup.save(tmp_path / "setup.h5")
    section = {
        "backend": "madgraph",
        "n_events_per_job": 500,
        "n_jobs": 2,
        "samples": {"sm": {"sampling_benchmark": "sm"}},
        "madgraph": {
            "mg_dir": str(mg),
            "model": "eft_ee",
            "process": ["e+ e- > mu+ mu- NP<=2"],
            "cache_dir": str(tmp_path / "cache"),
            "nb_core": 1,
            "timeout": 120,
        },
    }
    out = tmp_path / "sm_1.lhe.gz"
    rc = main(
        ["generate-events", "--setup", str(tmp_path / "setup.h5"), "--sample", "sm", "--job", "1",
         "--seed", "42", "--config", json.dumps(section), "-o", str(out)]
    )  # fmt: skip
    assert rc == 0
    names = [b.name for b in setup.physics_benchmarks()]
    reader = LHEReader(out, benchmarks=names)
    assert reader.weight_ids == names
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["iseed"] == job_seed(42, "sm", 1) and meta["global_seed"] == 42
    sums = np.array([reader.cross_sections()[n] for n in names])
    exact = np.array([_exact_sigma(mg, setup, n) for n in names])
    errs = np.array([meta["cross_section_errors"][n] for n in names])
    assert np.all(np.abs(sums - exact) < 4 * errs)
    assert math.isclose(sums.sum(), sum(meta["cross_sections"].values()), rel_tol=1e-12)


def test_timeout_kills_the_run(tmp_path, mg, monkeypatch):
    monkeypatch.setenv("FAKE_MG5_SLEEP", "30")
    job = mg_job(tmp_path, mg, eft_setup(1), timeout=1)
    with pytest.raises(BackendError, match="did not finish within 1 s") as err:
        MadGraphGenerator().generate(job)
    assert "INFO: Running Survey" in str(err.value)
    assert err.value.field == "generation.madgraph.timeout"
    _assert_nothing_left(tmp_path)
