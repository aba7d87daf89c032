"""Mode slurm-cluster on a real single-node SLURM: worker lifetimes and the dashboard link."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from eftflow.cluster import ClusterReport, dask_client

pytestmark = [pytest.mark.slurm, pytest.mark.integration]


def _our_jobs() -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-n", "eftflow-dask", "-o", "%i"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return set(out.split())


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
    deadline = time.monotonic() + 30
    while jobs & _our_jobs() and time.monotonic() < deadline:
        time.sleep(0.5)
    logs = "".join(p.read_text() for p in (tmp_path / "dask-logs").glob("*.err"))
    assert "worker-lifetime-reached" not in logs
