"""`eftflow train-estimator` / `evaluate-estimator` end to end on a toy event store."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _store(path, setup, n=20000, seed=3, sigma0=10.0):
    from eftflow.generate.toy import sample_toy, toy_cross_section, toy_dsigma
    from eftflow.store.events import EventStoreWriter

    rng = np.random.default_rng(seed)
    names = [b.name for b in setup.physics_benchmarks()]
    bv = setup.benchmark_array()
    x = sample_toy(n, bv[0], rng)
    p = toy_dsigma(x, bv[0]) / toy_cross_section(bv[0])
    w = np.stack([toy_dsigma(x, t, sigma0=sigma0) for t in bv], axis=1) / p[:, None] / n
    attrs = {"partitions": {"train": [0, 0], "validation": [0, 0], "test": [0, n]},
             "signal_events": [n] + [0] * (len(names) - 1)}  # fmt: skip
    with EventStoreWriter(path, ["x", "x2"], names, chunk_size=5000, attrs=attrs) as wr:
        wr.append(observables=np.stack([x, x * x], 1), weights=w,
                  sampling_benchmark=np.zeros(n, np.int64))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def setup_and_store(tmp_path_factory):
    from eftflow.generate.toy import toy_setup

    d = tmp_path_factory.mktemp("cli")
    s = toy_setup()
    s.save(d / "setup.h5")
    return d / "setup.h5", _store(d / "events.zarr", s)


def test_train_and_evaluate_cli(setup_and_store, tmp_path, toy):
    import zarr

    from eftflow.cli import main

    setup, store = setup_and_store
    x = np.random.default_rng(0).normal(size=12000)
    g = zarr.open_group(str(tmp_path / "local.zarr"), mode="w")
    obs = np.stack([x, x * x], 1)
    g.create_array("x", shape=obs.shape, chunks=(4000, 2), dtype="f4")[:] = obs
    t = toy["score"](x, np.zeros(2))
    g.create_array("t_xz", shape=t.shape, chunks=(4000, 2), dtype="f4")[:] = t
    cfg = {"training": {"method": "sally", "hidden": [32, 32], "n_epochs": 6, "batch_size": 128,
                        "learning_rate": 0.005, "final_learning_rate": 0.0005},
           "ensemble": {"n_members": 2}, "evaluation": {"luminosity": 10.0}}  # fmt: skip
    conf = json.dumps(cfg)
    ens = tmp_path / "ens"
    for k in range(2):
        rc = main(["train-estimator", str(tmp_path / "local.zarr"), "--config", conf,
                   "-o", str(ens / f"member_{k}.pt"), "--member", str(k)])  # fmt: skip
        assert rc == 0 and (ens / f"member_{k}.json").exists()
    (ens / "ensemble.json").write_text(json.dumps({"members": ["member_0", "member_1"]}))
    out = tmp_path / "eval.json"
    rc = main(["evaluate-estimator", str(ens), "--store", str(store), "--setup", str(setup),
               "--config", conf, "-o", str(out), "--plot", str(tmp_path / "plots")])  # fmt: skip
    assert rc == 0
    res = json.loads(out.read_text())
    truth = np.asarray(res["truth"]["information"])
    det = np.asarray(res["detector_plus_rate"]["information"])
    np.testing.assert_allclose(np.diag(truth), [400.0, 800.0], rtol=0.05)  # L σ0 diag(4, 8)
    np.testing.assert_allclose(np.diag(det), np.diag(truth), rtol=0.15)
    assert len(set(res["seeds"])) == 2
    assert (tmp_path / "plots" / "loss_curves.png").stat().st_size > 0


def test_cli_bad_training_set(tmp_path):
    from eftflow.cli import main

    rc = main(["train-estimator", str(tmp_path / "nothing.zarr"), "--config",
               '{"training": {"method": "sally"}}', "-o", str(tmp_path / "m.pt")])  # fmt: skip
    assert rc != 0
    assert not (tmp_path / "m.pt").exists()
