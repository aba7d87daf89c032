"""The job's resources reach the work: --threads caps torch's threads in train-estimator and
sets them in evaluate-estimator; augment-samples sizes its buffers from --memory-mb; commands
that draw several figures refuse a figure file name for --plot."""

from __future__ import annotations

import pytest

from eftflow.cli import main


def test_train_threads_capped_by_the_job(monkeypatch, tmp_path):
    import eftflow.ml.train as train

    seen = []

    def fake_train(trainset, tc, output):
        seen.append(tc.threads)
        return {}

    monkeypatch.setattr(train, "train_estimator", fake_train)
    from eftflow.ml.driver import run_train

    cfg = {"training": {"method": "sally", "threads": 4}}
    from eftflow.ml.driver import SCHEMA_FRAGMENT
    from eftflow.sampling.config import stage_sections

    full = stage_sections(cfg, SCHEMA_FRAGMENT)
    run_train(tmp_path / "t.zarr", full, tmp_path / "m", threads=2)  # config asks more: capped
    run_train(tmp_path / "t.zarr", full, tmp_path / "m", threads=8)  # config's choice within
    full["training"]["threads"] = None
    run_train(tmp_path / "t.zarr", full, tmp_path / "m", threads=3)  # null: all the job's cores
    assert seen == [2, 4, 3]


def test_evaluate_uses_the_job_threads(monkeypatch, tmp_path):
    import torch

    import eftflow.ml.driver as driver

    seen = []
    monkeypatch.setattr(
        driver, "run_evaluate", lambda *a, **k: seen.append(torch.get_num_threads())
    )
    before = torch.get_num_threads()
    args = ["evaluate-estimator", "m.json", "--store", "s.zarr", "--setup", "s.h5", "-o",
            str(tmp_path / "e.json"), "--threads", "3"]  # fmt: skip
    assert main(args) == 0
    assert seen == [3] and torch.get_num_threads() == before


def test_augment_buffers_from_the_job_memory(monkeypatch, tmp_path):
    import eftflow.sampling.config as config

    seen = {}

    def fake_run(store, setup, cfg, out, **kw):
        seen.update(kw)
        return {}

    monkeypatch.setattr(config, "run_augmentation", fake_run)
    args = ["augment-samples", "s.zarr", "--setup", "s.h5", "-o", str(tmp_path / "a"),
            "--memory-mb", "6000"]  # fmt: skip
    assert main(args) == 0
    assert seen["memory_mb"] == 3000


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate-estimator", "m.json", "--store", "s.zarr", "--setup", "s.h5", "-o", "e.json"],
        ["compute-fisher-information", "s.zarr", "--setup", "s.h5", "-o", "f.json"],
    ],
)
def test_several_figures_need_a_directory(argv, capsys):
    assert main([*argv, "--plot", "plots.png"]) == 2
    assert "several figures" in capsys.readouterr().err
