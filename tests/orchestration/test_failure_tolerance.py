"""Tolerated failed generator jobs: failure markers, their propagation, combine-events' checks."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.store.events import EventStore
from eftflow.store.failed import read_failure_marker, write_failure_marker

GEN = {
    "backend": "toy",
    "n_events_per_job": 2000,
    "n_jobs": 2,
    "samples": {"sm": {"sampling_benchmark": "sm"}, "bsm": {"sampling_benchmark": "sm"}},
    "toy": {"sigma0": 1.0},
}


def _run(args, cwd, env, timeout=300):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def setup_file(tmp_path):
    from eftflow.generate.toy import toy_setup

    path = tmp_path / "setup.h5"
    toy_setup().save(path)
    return path


def _generate(tmp_path, setup_file, env, sample, job, *extra, gen=GEN):
    out = tmp_path / "gen" / sample / f"{job}.zarr"
    cmd = ["eftflow", "generate-events", "--setup", str(setup_file), "--sample", sample]
    cmd += [
        "--job",
        str(job),
        "-o",
        str(out),
        "--config",
        json.dumps({"seed": 3, "generation": gen}),
    ]
    return _run([*cmd, *extra], tmp_path, env), out


def test_markers_round_trip_and_are_not_event_stores(tmp_path):
    for name in ("0.zarr", "0.lhe.gz", "0.lhe"):
        path = tmp_path / name
        rec = write_failure_marker(
            path, reason="it broke", stage="generate_events", sample="s", job=0
        )
        back = read_failure_marker(path)
        assert back["reason"] == "it broke" and back["sample"] == "s" and back["job"] == 0
        assert back == json.loads(json.dumps(rec))
    with pytest.raises(InputError, match="eftflow-failed"):
        EventStore(tmp_path / "0.zarr")
    real = tmp_path / "real.lhe"
    real.write_text("<LesHouchesEvents>\n<event>\n</event>\n</LesHouchesEvents>\n")
    assert read_failure_marker(real) is None and read_failure_marker(tmp_path / "nope") is None


def test_final_attempt_writes_a_marker_only_with_a_tolerance(tmp_path, setup_file, run_env):
    failing = dict(GEN, fail_jobs=["sm/1"])
    # no tolerance: the job fails, nothing is written
    proc, out = _generate(
        tmp_path, setup_file, run_env, "sm", 1, "--attempt", "3", "--retries", "2", gen=failing
    )
    assert proc.returncode != 0 and "fails on purpose" in proc.stderr and not out.exists()
    tolerant = dict(failing, max_failed_fraction=0.5)
    # an earlier attempt still fails (Snakemake retries it)
    proc, out = _generate(
        tmp_path, setup_file, run_env, "sm", 1, "--attempt", "1", "--retries", "2", gen=tolerant
    )
    assert proc.returncode != 0 and not out.exists()
    # the final attempt writes the marker and exits 0
    proc, out = _generate(
        tmp_path, setup_file, run_env, "sm", 1, "--attempt", "3", "--retries", "2", gen=tolerant
    )
    assert proc.returncode == 0, proc.stderr
    rec = read_failure_marker(out)
    assert rec["sample"] == "sm" and rec["job"] == 1 and rec["attempt"] == 3
    assert "fails on purpose" in rec["reason"] and "failure marker" in proc.stderr
    # a config error is never tolerated
    proc, out = _generate(
        tmp_path, setup_file, run_env, "nosuch", 0, "--attempt", "3", "--retries", "2", gen=tolerant
    )
    assert proc.returncode != 0 and "unknown sample" in proc.stderr and not out.exists()  # fmt: skip


def test_later_stages_pass_the_marker_on(tmp_path, setup_file, run_env):
    lhe = tmp_path / "gen/sm/1.lhe.gz"
    write_failure_marker(
        lhe, reason="MadGraph crashed", stage="generate_events", sample="sm", job=1
    )
    steps = [
        ("shower-events", lhe, tmp_path / "shower/sm/1.zarr"),
        ("simulate-detector", tmp_path / "shower/sm/1.zarr", tmp_path / "det/sm/1.zarr"),
        ("analyse-events", tmp_path / "det/sm/1.zarr", tmp_path / "ana/sm/1.zarr"),
    ]
    for cmd, src, dst in steps:
        proc = _run(
            ["eftflow", cmd, str(src), "--setup", str(setup_file), "-o", str(dst)],
            tmp_path,
            run_env,
        )
        assert proc.returncode == 0, proc.stderr
        rec = read_failure_marker(dst)
        assert rec["failed_stage"] == "generate_events" and rec["reason"] == "MadGraph crashed"
        assert rec["sample"] == "sm" and rec["job"] == 1 and "failure marker" in proc.stderr  # fmt: skip


def test_combine_leaves_markers_out_within_the_tolerance(tmp_path, setup_file, run_env):
    stores = []
    for sample in ("sm", "bsm"):
        for job in (0, 1):
            proc, out = _generate(tmp_path, setup_file, run_env, sample, job)
            assert proc.returncode == 0, proc.stderr
            stores.append(out)
    lost = tmp_path / "gen/sm/1.zarr"
    sm1 = EventStore(lost).cross_sections()
    write_failure_marker(lost, reason="node died", stage="generate_events", sample="sm", job=1)
    inputs = [str(p) for p in stores]
    base = ["eftflow", "combine-events", *inputs, "--setup", str(setup_file), "--seed", "1"]

    out = tmp_path / "too_many.zarr"
    proc = _run([*base, "-o", str(out), "--max-failed-fraction", "0.2"], tmp_path, run_env)
    assert proc.returncode != 0 and not out.exists()
    assert "1 of 4 generator jobs failed (sm/1)" in proc.stderr
    assert "generation.max_failed_fraction" in proc.stderr and str(lost) in proc.stderr

    out = tmp_path / "combined.zarr"
    proc = _run([*base, "-o", str(out), "--max-failed-fraction", "0.25"], tmp_path, run_env)
    assert proc.returncode == 0, proc.stderr
    combined = EventStore(out)
    record = combined.attrs["lost_jobs"]
    assert record["n_lost"] == 1 and record["n_inputs"] == 4 and record["fraction"] == 0.25
    assert record["jobs"][0]["sample"] == "sm" and record["jobs"][0]["reason"] == "node died"
    assert record["k_factors"] == {"sm": 1.0, "bsm": 0.5}
    assert "sm: 1 of 2 jobs kept, their weights × 2" in proc.stderr and "bsm:" not in proc.stderr
    assert combined.n_events == 3 * 2000 and str(lost) not in combined.attrs["input_files"]
    # each job's weights sum to its sample's σ: the jobs of a sample are averaged (k = 1/n_jobs),
    # and the surviving sm job stands for the sample alone (≈ the mean of both, sm/1 lost)
    sm0 = EventStore(stores[0]).cross_sections()
    bsm = sum(EventStore(p).cross_sections() for p in stores[2:]) / 2
    np.testing.assert_allclose(combined.cross_sections(), sm0 + bsm, rtol=1e-6)
    assert np.all(np.abs(sm0 - (sm0 + sm1) / 2) < 0.05 * (sm0 + sm1))


@pytest.mark.integration
def test_workflow_goes_on_and_the_report_lists_the_lost_job(
    tmp_path, new_workflow_copy, run_env, toy_args
):
    wf = new_workflow_copy(tmp_path / "wf")
    (wf / "fail.yaml").write_text(
        "generation:\n  max_failed_fraction: 0.3\n  fail_jobs: ['t1/1']\n"
    )
    args = ["snakemake", "--cores", "2", "all_report", *toy_args, "fail.yaml"]
    proc = _run(args, wf, run_env, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert out.count("Error in rule generate_events") == 2  # two retries, then the marker
    assert read_failure_marker(wf / "results/generate_events/t1/1.zarr")["attempt"] == 3
    combined = EventStore(wf / "results/combine_events/events.zarr")
    assert [j["sample"] for j in combined.attrs["lost_jobs"]["jobs"]] == ["t1"]
    html = (wf / "results/report/report.html").read_text()
    assert "1 of 4 generator jobs failed for good" in html and "fails on purpose" in html
