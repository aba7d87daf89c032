"""Dask on a real single-node SLURM: SLURMCluster worker jobs and SLURMRunner under srun."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from eftflow.cluster import ClusterReport, dask_client
from eftflow.errors import BackendError

pytestmark = [pytest.mark.slurm, pytest.mark.integration]


def _our_jobs() -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-n", "eftflow-dask", "-o", "%i"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return set(out.split())


def _wait_gone(jobs: set[str], timeout: float = 30) -> set[str]:
    deadline = time.monotonic() + timeout
    while jobs & _our_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    return jobs & _our_jobs()


def _settings(tmp_path, **slurm):
    base = {
        "cores": 1,
        "memory": "1GB",
        "walltime": "00:10:00",
        "lifetime_stagger": "30s",
        "interface": "lo",
        "log_directory": str(tmp_path / "dask-logs"),
        "local_directory": str(tmp_path / "spill"),
        "n_workers": 2,
    }
    base.update(slurm)
    return {
        "mode": "slurm-cluster",
        "dashboard_address": "127.0.0.1:0",
        "startup_timeout": 120,
        "slurm": base,
    }


def _square(x):
    return x * x


def test_slurm_cluster_two_workers_compute_and_leave_no_jobs(slurm, tmp_path):
    import dask.array as da

    before = _our_jobs()
    report = ClusterReport()
    with dask_client(_settings(tmp_path), report=report) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        jobs = _our_jobs() - before
        assert len(jobs) == 2
        x = da.ones((20_000, 50), chunks=(2_000, 50))
        assert float(x.sum().compute()) == 1_000_000.0
        assert sum(client.gather(client.map(_square, range(8)))) == 140
        port = urlsplit(report.dashboard_link).port
        with urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as r:
            assert r.status == 200
    assert report.workers_joined == 2 and report.workers_lost == []
    assert not _wait_gone(jobs), "worker jobs still in squeue after the step"
    assert list((tmp_path / "dask-logs").glob("*.err")), "no worker job logs"


def test_slurm_cluster_workers_that_never_start_time_out(slurm, tmp_path):
    before = _our_jobs()
    cfg = _settings(tmp_path, n_workers=1, job_extra_directives=["--begin=now+1hour"])
    cfg["startup_timeout"] = 3
    with pytest.raises(
        BackendError, match=r"only 0 of 1 Dask worker\(s\) started within 3 s"
    ) as info:
        with dask_client(cfg):
            pass  # pragma: no cover
    assert info.value.field == "cluster.startup_timeout"
    assert not _wait_gone(_our_jobs() - before, timeout=15), "pending worker job not cancelled"


def test_slurm_cluster_refused_partition_fails_at_once(slurm, tmp_path):
    before = _our_jobs()
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="invalid partition") as info:
        with dask_client(_settings(tmp_path, queue="no_such_partition")):
            pass  # pragma: no cover
    assert info.value.field == "cluster.slurm"
    assert time.monotonic() - t0 < 60
    assert _our_jobs() == before


RUNNER = textwrap.dedent(
    """
    import logging, os
    from eftflow.cluster import dask_client, ClusterReport

    def square(x):
        return x * x

    if __name__ == "__main__":
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # shutdown tracebacks
        report = ClusterReport()
        cfg = {{"mode": "slurm-runner", "dashboard_address": "127.0.0.1:0",
                "slurm": {{"interface": "lo", "scheduler_file": {sched!r}}}}}
        with dask_client(cfg, report=report) as client:
            n = len(client.scheduler_info()["workers"])
            total = sum(client.gather(client.map(square, range(10))))
        print("RESULT", total, n, os.environ["SLURM_PROCID"], report.n_lost, flush=True)
    """
)


def test_slurm_runner_under_srun(slurm, tmp_path, run_env):
    script = tmp_path / "runner_step.py"
    sched = str(tmp_path / "sched-{job_id}.json")
    script.write_text(RUNNER.format(sched=sched))
    proc = subprocess.run(
        ["srun", "-n", "3", "--overcommit", "--mem=2G", "-t", "5", sys.executable, str(script)],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    results = [line.split() for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    # only the client task (rank 1) runs the body: 1 worker, sum of squares, no worker lost
    assert results == [["RESULT", "285", "1", "1", "0"]]
    assert "Dask dashboard: http://" in proc.stderr
    assert not list(tmp_path.glob("sched-*.json")), "scheduler file left behind"


def _lifetime(dask_worker=None):
    return dask_worker.lifetime


def test_short_walltime_workers_are_not_retired_at_start(slurm, tmp_path, caplog):
    """Walltime 00:06:00 used to give ``--lifetime 24s --lifetime-stagger 300s``: most workers
    drew a negative lifetime and left 1 ms after they started ("worker-lifetime-reached")."""
    caplog.set_level(logging.INFO)
    before = _our_jobs()
    cfg = {
        "mode": "slurm-cluster",
        "dashboard_address": ":0",
        "startup_timeout": 120,
        "slurm": {
            "cores": 1,
            "memory": "1GB",
            "walltime": "00:06:00",
            "interface": "lo",
            "log_directory": str(tmp_path / "dask-logs"),
            "n_workers": 1,
        },
    }
    report = ClusterReport()
    with dask_client(cfg, report=report) as client:
        lifetimes = client.run(_lifetime)
        assert len(lifetimes) == 1
        # drawn from 260 s +- 64 s: never less than 196 s
        assert all(196 <= value <= 324 for value in lifetimes.values()), lifetimes
        time.sleep(1)
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert len(client.scheduler_info()["workers"]) == 1  # still there
        jobs = _our_jobs() - before
    assert report.workers_lost == []
    host = urlsplit(report.dashboard_link).hostname
    node = socket.gethostname()
    assert host == (node if node and not node.startswith("localhost") else "127.0.0.1")
    _wait_gone(jobs)
    logs = "".join(p.read_text() for p in (tmp_path / "dask-logs").glob("*.err"))
    assert "worker-lifetime-reached" not in logs
