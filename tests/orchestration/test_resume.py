"""Kill-and-resume: SIGKILL snakemake mid-run, rerun with --rerun-incomplete, same outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from eftflow.store.events import EventStore

pytestmark = pytest.mark.integration

ARRAYS = ("observables", "weights", "sampling_benchmark")


def _numbers(obj):
    """The numbers of a JSON document, flattened in order."""
    if isinstance(obj, dict):
        return [x for k in sorted(obj) for x in _numbers(obj[k])]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    return [obj] if isinstance(obj, int | float) and not isinstance(obj, bool) else []


def test_killed_run_resumes_to_identical_outputs(
    toy_run, tmp_path, new_workflow_copy, run_env, toy_args
):
    wf = new_workflow_copy(tmp_path / "wf")
    env = run_env
    TOY = toy_args
    proc = subprocess.Popen(
        ["snakemake", "--cores", "2", "all_report", *TOY],
        cwd=wf,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the running jobs too
    )
    generated = wf / "results/generate_events"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = list(generated.glob("*/*.zarr")) if generated.is_dir() else []
            if done:  # some outputs exist, others are being written
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (wf / "results/combine_events/events.zarr").exists()
    setup_mtime = (wf / "results/setup/setup.h5").stat().st_mtime_ns

    unlock = subprocess.run(["snakemake", "--unlock", *TOY], cwd=wf, env=env, capture_output=True)
    assert unlock.returncode == 0, unlock.stderr.decode()[-2000:]
    rerun = subprocess.run(
        ["snakemake", "--cores", "2", "--rerun-incomplete", "all_report", *TOY],
        cwd=wf,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-5000:]
    assert "rule setup:" not in out  # finished work is kept
    assert (wf / "results/setup/setup.h5").stat().st_mtime_ns == setup_mtime

    a = EventStore(toy_run / "results/combine_events/events.zarr")
    b = EventStore(wf / "results/combine_events/events.zarr")
    assert a.n_events == b.n_events and a.partitions == b.partitions
    for name in ARRAYS:
        np.testing.assert_array_equal(a.read(name), b.read(name), err_msg=name)
    fisher = "results/compute_fisher_information/fisher_information.json"
    na = _numbers(json.loads((toy_run / fisher).read_text()))
    nb = _numbers(json.loads((wf / fisher).read_text()))
    assert len(na) > 20 and na == nb
    summary = "results/augment_samples/summary.json"
    assert _numbers(json.loads((toy_run / summary).read_text())) == _numbers(
        json.loads((wf / summary).read_text())
    )
    assert (wf / "results/report/report.html").is_file()
