"""Mismatched inputs of the ML stages: each is one clear InputError naming file and field.

Observables of the events vs the model's, the setup vs the training set (morphing-aware
training), the kind of training set vs the method; plus the ensemble index's member paths and
the losses logged by the ensemble driver.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.ml.train import TrainingConfig, train_estimator

TINY = {"hidden": (8,), "n_epochs": 2, "batch_size": 256}


def _store(path, setup, observables, n=4000, seed=3):
    """A toy event store whose columns are named ``observables`` (x, x², x³, ... of the toy)."""
    from eftflow.generate.toy import sample_toy, toy_cross_section, toy_dsigma
    from eftflow.store.events import EventStoreWriter

    rng = np.random.default_rng(seed)
    names = [b.name for b in setup.physics_benchmarks()]
    bv = setup.benchmark_array()
    x = sample_toy(n, bv[0], rng)
    p = toy_dsigma(x, bv[0]) / toy_cross_section(bv[0])
    w = np.stack([toy_dsigma(x, t) for t in bv], axis=1) / p[:, None] / n
    attrs = {"partitions": {"train": [0, 0], "validation": [0, 0], "test": [0, n]},
             "signal_events": [n] + [0] * (len(names) - 1)}  # fmt: skip
    obs = np.stack([x ** (k + 1) for k in range(len(observables))], 1)
    with EventStoreWriter(path, list(observables), names, chunk_size=2000, attrs=attrs) as wr:
        wr.append(observables=obs, weights=w, sampling_benchmark=np.zeros(n, np.int64))
    return path


def _local_set(path, observables, *, n=2000, kind="local"):
    """A small SALLY set with ``len(observables)`` columns, its attributes as sampling writes."""
    import zarr

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, len(observables)))
    g = zarr.open_group(str(path), mode="w")
    g.create_array("x", shape=x.shape, chunks=(1000, x.shape[1]), dtype="f4")[:] = x
    g.create_array("t_xz", shape=(n, 2), chunks=(1000, 2), dtype="f4")[:] = x[:, :1] * [2.0, 1.0]
    attrs = {
        "format": "eftflow-training",
        "method": kind,
        "parameter_names": ["theta_1", "theta_2"],
    }
    if observables[0] is not None:
        attrs["observable_names"] = list(observables)
    g.attrs.update(attrs)
    return path


@pytest.fixture(scope="module")
def setup_file(tmp_path_factory):
    from eftflow.generate.toy import toy_setup

    path = tmp_path_factory.mktemp("setup") / "setup.h5"
    toy_setup().save(path)
    return path


def _other_setup(path):
    """A setup of another run: same shape as the toy's, other parameter names."""
    from eftflow.setup import EFTSetup

    s = EFTSetup()
    for i, name in enumerate(("cHW", "cHB"), start=1):
        s.add_parameter("dim6", i, name, morphing_max_power=2, parameter_range=(-1.0, 1.0))
    for name, (a, b) in {"sm": (0.0, 0.0), "p1": (0.5, 0.0), "p2": (0.0, 0.5)}.items():
        s.add_benchmark({"cHW": a, "cHB": b}, name, verbose=False)
    s.set_morphing(max_overall_power=2, seed=0)
    s.save(path)
    return path


# --- 1. observables of the events vs the model's ------------------------------------------------


@pytest.mark.parametrize(
    ("trained_on", "store_has", "expect"),
    [
        (["x", "x2"], ["pt", "eta"], "trained on 2 observables \\(x, x2\\)"),
        (["x", "x2"], ["x", "x2", "x3"], "these events have 3 observables"),
        ([None, None], ["a", "b", "c"], "trained on 2 unnamed observables"),
    ],
    ids=["other-names", "other-count", "unnamed-other-count"],
)
def test_evaluate_on_other_observables(trained_on, store_has, expect, setup_file, tmp_path):
    from eftflow.cli import main
    from eftflow.ml.driver import SCHEMA_FRAGMENT, run_evaluate
    from eftflow.sampling.config import stage_sections
    from eftflow.setup import EFTSetup

    ts = _local_set(tmp_path / "local.zarr", trained_on)
    train_estimator(ts, TrainingConfig(method="sally", **TINY), tmp_path / "model")
    store = _store(tmp_path / "events.zarr", EFTSetup.from_file(setup_file), store_has)
    out = tmp_path / "eval.json"
    cfg = stage_sections({"evaluation": {"luminosity": 10.0}}, SCHEMA_FRAGMENT)
    with pytest.raises(InputError, match=expect) as err:
        run_evaluate(tmp_path / "model.pt", store, setup_file, cfg, out)
    assert err.value.file == str(store) and err.value.field == "attrs.observable_names"
    assert ", ".join(store_has) in err.value.message
    rc = main(["evaluate-estimator", str(tmp_path / "model.pt"), "--store", str(store),
               "--setup", str(setup_file), "-o", str(out)])  # fmt: skip
    assert rc == 2
    assert not out.exists() and not list(tmp_path.glob("eval*"))


def test_predict_on_wrong_width(toy_sets):
    from eftflow.ml.evaluate import predict_log_p, predict_log_r, predict_score

    sally = train_estimator(toy_sets["local"], TrainingConfig(method="sally", **TINY), None)
    carl = train_estimator(toy_sets["ratio"], TrainingConfig(method="carl", **TINY), None)
    x = np.zeros((5, 24))
    with pytest.raises(InputError, match="x has 24 observables per event.* trained on 1") as err:
        predict_score(sally["model"], x)
    assert err.value.field == "x"
    with pytest.raises(InputError, match="x has 24 observables"):
        predict_log_r(carl["model"], x, [[0.0, 0.0]])
    with pytest.raises(InputError, match="x has 24 observables"):
        predict_log_p(carl["model"], x, [[0.0, 0.0]])
    assert predict_score(sally["model"], np.zeros(5)).shape == (5, 2)  # 1-d x: one observable


def test_ensemble_of_members_on_other_observables(tmp_path):
    from eftflow.ml.ensemble import Ensemble

    ens = tmp_path / "ens"
    for k, obs in enumerate((["x", "x2"], ["pt", "eta"])):
        ts = _local_set(tmp_path / f"set{k}.zarr", obs)
        train_estimator(ts, TrainingConfig(method="sally", **TINY), ens / f"member_{k}")
    (ens / "ensemble.json").write_text(json.dumps({"members": ["member_0", "member_1"]}))
    with pytest.raises(InputError, match="different observables: 2 \\(pt, eta\\); 2 \\(x, x2\\)"):
        Ensemble.load(ens)


# --- 2. the setup of morphing-aware training vs the training set --------------------------------

MORPHING = {"method": "alices", "morphing_aware": True, "hidden": [8], "n_epochs": 1}


def test_morphing_aware_with_setup_of_another_run(toy_sets, setup_file, tmp_path):
    from eftflow.cli import main
    from eftflow.ml.driver import check_setup, run_train

    other = _other_setup(tmp_path / "other.h5")
    with pytest.raises(
        InputError, match="parameters \\(cHW, cHB\\).*\\(theta_1, theta_2\\)"
    ) as err:
        run_train(toy_sets["ratio"], {"training": MORPHING}, tmp_path / "m.pt", setup_file=other)
    assert err.value.file == str(other) and err.value.field == "parameters"
    assert str(toy_sets["ratio"]) in err.value.message
    rc = main(["train-estimator", str(toy_sets["ratio"]), "--setup", str(other),
               "--config", json.dumps({"training": MORPHING}), "-o", str(tmp_path / "m.pt")])  # fmt: skip
    assert rc == 2
    rc = main(["train-ensemble", str(toy_sets["ratio"]), "--setup", str(other), "--config",
               json.dumps({"training": MORPHING, "ensemble": {"n_members": 1}}),
               "-o", str(tmp_path / "ens")])  # fmt: skip
    assert rc == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.h5"]
    check_setup(toy_sets["ratio"], setup_file)  # the right setup passes


def test_morphing_aware_setup_hash(setup_file, tmp_path):
    import zarr

    from eftflow.ml.driver import check_setup, run_train
    from eftflow.store.combine import setup_fingerprint

    ts = tmp_path / "ratio.zarr"
    _local_set(ts, ["x"], kind="ratio")
    g = zarr.open_group(str(ts), mode="r+")
    g.attrs["setup_hash"] = "0" * 64
    with pytest.raises(InputError, match="differs from the setup_hash 000000000000") as err:
        run_train(ts, {"training": MORPHING}, tmp_path / "out" / "m.pt", setup_file=setup_file)
    assert err.value.file == str(setup_file) and err.value.field == "setup_hash"
    assert not (tmp_path / "out").exists()
    g.attrs["setup_hash"] = setup_fingerprint(setup_file)
    check_setup(ts, setup_file)


# --- 3. the kind of training set vs the method --------------------------------------------------

WRONG_KIND = [("sally", "ratio", "'local'"), ("sallino", "density", "'local'"),
              ("carl", "local", "'ratio' or 'more_ratios'"),
              ("alices", "density", "'ratio' or 'more_ratios'"),
              ("nde", "ratio", "'density' or 'plain'"), ("scandal", "local", "'density'")]  # fmt: skip


@pytest.mark.parametrize(("method", "kind", "needs"), WRONG_KIND, ids=[c[0] for c in WRONG_KIND])
def test_training_set_of_wrong_kind(method, kind, needs, toy_sets, tmp_path):
    with pytest.raises(InputError, match=f"needs a training set of kind {needs}") as err:
        train_estimator(toy_sets[kind], TrainingConfig(method=method, **TINY), tmp_path / "m")
    assert err.value.field == "attrs.method" and str(toy_sets[kind]) == err.value.file
    assert not list(tmp_path.iterdir())


def test_sally_on_ratio_set_everywhere(toy_sets, tmp_path, capsys):
    from eftflow.cli import main
    from eftflow.ml.batched import train_ensemble_batched

    with pytest.raises(InputError, match="this is a ratio set") as err:
        train_ensemble_batched(toy_sets["ratio"], TrainingConfig(method="sally", **TINY), 2,
                               tmp_path / "ens")  # fmt: skip
    assert err.value.field == "attrs.method"
    conf = json.dumps({"training": {"method": "sally", "n_epochs": 1}})
    rc = main(["train-estimator", str(toy_sets["ratio"]), "--config", conf,
               "-o", str(tmp_path / "m.pt")])  # fmt: skip
    assert rc == 2 and "attrs.method" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# --- 4. and 5. losses in the driver's log, member paths relative to the ensemble ----------------


def test_ensemble_logs_losses_and_relative_paths(toy_sets, tmp_path, caplog):
    from eftflow.ml.ensemble import Ensemble, train_ensemble

    cfg = TrainingConfig(method="sally", **TINY)
    with caplog.at_level(logging.INFO, logger="eftflow.ml.ensemble"):
        res = train_ensemble(toy_sets["local"], cfg, 2, tmp_path / "ens")
    lines = [r.getMessage() for r in caplog.records if r.name == "eftflow.ml.ensemble"]
    for k in (0, 1):
        assert any(m.startswith(f"member {k} epoch 2/2: train loss ") for m in lines)
        done = [m for m in lines if m.startswith(f"member {k} finished: 2 epochs run, best epoch")]
        assert len(done) == 1 and "validation loss" in done[0] and "n/a" not in done[0]
    index = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert [r["path"] for r in index["results"]] == ["member_0", "member_1"]
    assert [r["path"] for r in res] == ["member_0", "member_1"]
    assert all("history" not in r for r in index["results"])
    assert len(Ensemble.load(tmp_path / "ens")) == 2


def test_batched_ensemble_logs_and_relative_paths(toy_sets, tmp_path, caplog):
    from eftflow.ml.batched import train_ensemble_batched

    cfg = TrainingConfig(method="sally", **TINY)
    with caplog.at_level(logging.INFO, logger="eftflow.ml.batched"):
        train_ensemble_batched(toy_sets["local"], cfg, 2, tmp_path / "ens")
    lines = [r.getMessage() for r in caplog.records if r.name == "eftflow.ml.batched"]
    assert sum(m.startswith("member ") and " finished: 2 epochs run" in m for m in lines) == 2
    index = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert [r["path"] for r in index["results"]] == ["member_0", "member_1"]


def test_cli_member_path_is_relative(toy_sets, tmp_path):
    from eftflow.ml.driver import run_train

    res = run_train(toy_sets["local"], {"training": {"method": "sally", "hidden": [8],
                                                     "n_epochs": 1}},
                    tmp_path / "ens" / "m3.pt", member=3)  # fmt: skip
    assert res["path"] == "m3" and (tmp_path / "ens" / "m3.json").exists()
