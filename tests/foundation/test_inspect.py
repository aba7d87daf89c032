"""``eftflow inspect``: summaries of stores, setup files, MadMiner files, estimators and models
agree with what was written; anything else is one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.errors import InputError
from eftflow.inspect import format_summary, inspect_path
from eftflow.setup import EFTSetup
from eftflow.store.combine import combine_events
from eftflow.store.events import EventStoreWriter


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A setup (2 parameters, 6 benchmarks), two event stores and their combination."""
    d = tmp_path_factory.mktemp("inspect")
    s = EFTSetup()
    for k in (1, 2):
        s.add_parameter("toy", k, f"theta_{k}", morphing_max_power=2, parameter_range=(-1.0, 1.0))
    s.add_benchmark({"theta_1": 0.0, "theta_2": 0.0}, "sm")
    s.add_benchmark({"theta_1": 0.5, "theta_2": -0.25}, "bsm")
    s.set_morphing(max_overall_power=2, seed=3)
    s.save(d / "setup.h5")
    names = list(s.benchmarks)
    rng = np.random.default_rng(1)
    stores = []
    for k, n in enumerate((300, 200)):
        path = d / f"in{k}.zarr"
        with EventStoreWriter(path, ["x", "y"], names, chunk_size=64) as w:
            w.append(
                observables=rng.normal(size=(n, 2)),
                weights=np.tile(np.arange(1.0, len(names) + 1) / 1000, (n, 1)),
                sampling_benchmark=np.full(n, k),
            )
        stores.append(path)
    combine_events(stores, d / "events.zarr", seed=5, setup=d / "setup.h5")
    return d, s


def test_event_store_summary(run):
    d, s = run
    info = inspect_path(d / "events.zarr", cross_sections=True)
    assert info["kind"] == "event store" and info["n_events"] == 500
    assert info["observables"] == ["x", "y"] and info["benchmarks"] == list(s.benchmarks)
    assert info["partitions"] == {"train": (0, 300), "validation": (300, 400), "test": (400, 500)}
    names = list(s.benchmarks)
    assert info["events_per_sampling_benchmark"][names[0]] == 300
    assert info["events_per_sampling_benchmark"][names[1]] == 200
    # every event has weight (b + 1) / 1000 pb for benchmark b; MadMiner's sampling factors
    # 300/500 and 200/500 weigh the two samples' estimates (300 and 200 events)
    expected = {b: (0.6 * 300 + 0.4 * 200) * (k + 1) / 1000 for k, b in enumerate(names)}
    assert info["cross_sections_pb"] == pytest.approx(expected, rel=1e-12)
    assert info["shuffle_seed"] == 5 and info["inputs"] == 2 and info["k_factors"] == [1.0, 1.0]
    assert info["provenance"]["stage"] == "combine_events"
    assert set(info["arrays"]) == {"observables", "weights", "sampling_benchmark"}
    assert info["arrays"]["weights"]["shape"] == [500, len(names)]
    assert info["arrays"]["weights"]["chunk_rows"] == 64
    assert info["bytes"] == sum(a["bytes"] for a in info["arrays"].values()) > 0
    text = format_summary(info)
    assert "partitions: train [0, 300), validation [300, 400), test [400, 500)" in text
    assert "  k_factors: 1, 1\n" in text
    assert "  cross_sections_pb:\n    sm: 0.26\n    bsm: 0.52\n" in text  # one per line


def test_setup_summary(run):
    d, s = run
    info = inspect_path(d / "setup.h5")
    assert info["kind"] == "setup" and info["morphing_components"] == 6
    assert info["parameters"]["theta_1"] == {"range": (-1.0, 1.0), "morphing_max_power": 2}
    assert "theta_1: range=[-1, 1], morphing_max_power=2" in format_summary(info)
    assert info["benchmarks"]["bsm"] == {"theta_1": 0.5, "theta_2": -0.25}
    assert len(info["benchmarks"]) == len(s.benchmarks)
    assert "bsm: theta_1=0.5, theta_2=-0.25" in format_summary(info)


def test_madminer_event_file_summary(run, tmp_path):
    from eftflow.store.madminer_io import export_madminer

    d, _ = run
    export_madminer(d / "events.zarr", d / "setup.h5", tmp_path / "mm.h5")
    info = inspect_path(tmp_path / "mm.h5")
    assert info["kind"] == "MadMiner event file"
    assert info["n_events"] == 500 and info["observables"] == ["x", "y"]


def test_cli_json_and_text(run, capsys):
    d, _ = run
    assert main(["inspect", "--json", str(d / "in0.zarr"), str(d / "setup.h5")]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert [i["kind"] for i in infos] == ["event store", "setup"]
    assert infos[0]["n_events"] == 300 and "partitions" not in infos[0]  # not combined
    assert main(["inspect", str(d / "in1.zarr")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{d / 'in1.zarr'}: event store\n") and "  n_events: 200\n" in out


def test_estimator_ensemble_and_model_summaries(tmp_path):
    est = {
        "format": "eftflow-estimator",
        "method": "sally",
        "family": "score",
        "model": {"class": "ScoreEstimator", "kwargs": {}},
        "summary": {"best_loss": 0.5, "epochs_run": 7},
        "training_set_attrs": {"observable_names": ["x"], "parameter_names": ["theta_1"]},
    }
    (tmp_path / "m.json").write_text(json.dumps(est))
    info = inspect_path(tmp_path / "m.json")
    assert (info["kind"], info["class"], info["best_loss"], info["observables"]) == (
        "estimator", "ScoreEstimator", 0.5, ["x"],
    )  # fmt: skip
    ens = {"format": "eftflow-ensemble", "method": "sally", "n_members": 2,
           "results": [{"best_loss": 0.4, "epochs_run": 3}, {"best_loss": 0.6, "epochs_run": 4}]}  # fmt: skip
    (tmp_path / "ensemble.json").write_text(json.dumps(ens))
    info = inspect_path(tmp_path)
    assert info["kind"] == "ensemble" and info["best_loss"] == [0.4, 0.6]
    model = tmp_path / "model"
    model.mkdir()
    doc = {"format": "eftflow-model/1", "poi": ["mu"], "regions": [{"name": "sr", "kind": "binned"}],
           "parameters": [{"name": "mu"}, {"name": "nu"}], "closure": {"passed": True}}  # fmt: skip
    (model / "model.json").write_text(json.dumps(doc))
    info = inspect_path(model)
    assert info["regions"] == ["sr (binned)"] and info["parameters"] == ["mu", "nu"]
    assert info["closure_passed"] is True


def test_bad_paths_are_one_clear_error(run, tmp_path, capsys):
    d, _ = run
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}))
    cases = {
        tmp_path / "missing.zarr": "does not exist",
        tmp_path / "notes.txt": "not an eftflow output",
        tmp_path / "empty": "not an eftflow output",
        tmp_path / "bad.json": "malformed JSON",
        tmp_path / "other.json": "format 'something'",
    }
    for path, words in cases.items():
        with pytest.raises(InputError, match=words) as err:
            inspect_path(path)
        assert err.value.file == str(path)
    # a store whose writer did not finish (no n_events) is named as incomplete
    cut = tmp_path / "cut.zarr"
    import shutil

    shutil.copytree(d / "in0.zarr", cut)
    meta = json.loads((cut / "zarr.json").read_text())
    del meta["attributes"]["n_events"]
    (cut / "zarr.json").write_text(json.dumps(meta))
    assert main(["inspect", str(cut)]) == 2
    err = capsys.readouterr().err
    assert str(cut) in err and "n_events" in err
