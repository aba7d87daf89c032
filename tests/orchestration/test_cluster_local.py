"""Mode local: lifecycle, dashboard line first, clean-up on errors and signals, worker deaths counted."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from eftflow.cluster import ClusterReport, dask_client

THREADS = {"mode": "local", "dashboard_address": "127.0.0.1:0", "local": {"processes": False}}
PROCESSES = {"mode": "local", "dashboard_address": "127.0.0.1:0", "local": {"processes": True}}


def _square(x):
    return x * x


def test_lifecycle_dashboard_first_and_closed_after(caplog):
    caplog.set_level(logging.INFO)
    report = ClusterReport()
    with dask_client(THREADS, threads=2, memory_mb=1000, report=report) as client:
        info = client.scheduler_info()
        assert len(info["workers"]) == 2
        assert all(w["nthreads"] == 1 for w in info["workers"].values())
        # thread workers: Dask measures this process against each limit, so each has it all
        assert all(w["memory_limit"] == 1_000_000_000 for w in info["workers"].values())
        assert sum(client.gather(client.map(_square, range(10)))) == 285
        with urlopen(
            f"http://127.0.0.1:{urlsplit(client.dashboard_link).port}/status", timeout=30
        ) as r:
            assert r.status == 200
    assert client.status == "closed"
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert records[0].getMessage() == f"Dask dashboard: {report.dashboard_link}"
    port = urlsplit(report.dashboard_link).port
    assert port and report.dashboard_link.endswith("/status")
    assert report.workers_joined == 2 and report.workers_lost == []
    assert "2 worker(s) joined, none lost" in records[-1].getMessage()


def test_thread_workers_are_not_paused_by_the_stage_process():
    """Thread workers see this process's memory: with a share of mem_mb each, a process larger
    than 80 % of the share paused them for good and the step hung."""
    import psutil

    rss_mb = psutil.Process().memory_info().rss / 1e6
    memory_mb = int(rss_mb * 1.6)  # a half share (0.8 rss) would be exceeded: paused at once
    with dask_client(THREADS, threads=2, memory_mb=memory_mb) as client:
        time.sleep(1.0)  # the workers' memory monitors run every 100 ms
        statuses = {w["status"] for w in client.scheduler_info()["workers"].values()}
        assert statuses == {"running"}
        assert client.submit(_square, 7).result(timeout=30) == 49


def test_thread_workers_never_pause_when_the_stage_process_nears_the_limit():
    """A stage process already at 95 % of mem_mb (e.g. a long test session, or a stage holding
    big buffers): Dask would pause its thread workers at 80 %, for good, and the step hung."""
    import psutil

    rss_mb = psutil.Process().memory_info().rss / 1e6
    memory_mb = max(int(rss_mb / 0.95), 1)
    with dask_client(THREADS, threads=2, memory_mb=memory_mb) as client:
        time.sleep(1.0)  # the workers' memory monitors run every 100 ms
        statuses = {w["status"] for w in client.scheduler_info()["workers"].values()}
        assert statuses == {"running"}
        assert sum(f.result(timeout=60) for f in client.map(_square, range(10))) == 285


def test_client_and_workers_released_when_the_step_fails(caplog):
    caplog.set_level(logging.INFO)
    report = ClusterReport()
    with pytest.raises(ZeroDivisionError):
        with dask_client(THREADS, threads=1, report=report) as client:
            client.submit(lambda: 1 / 0).result()
    assert client.status == "closed"
    assert "workers released" in caplog.records[-1].getMessage()


def test_bad_settings_fail_before_anything_starts():
    from eftflow.errors import ConfigError

    with pytest.raises(ConfigError, match="cluster.local.threads_per_worker"):
        with dask_client({"local": {"threads_per_worker": 0}}):
            pass  # pragma: no cover


def test_killed_worker_is_counted_and_reported(caplog):
    caplog.set_level(logging.WARNING)
    report = ClusterReport()
    with dask_client(PROCESSES, threads=2, memory_mb=2000, report=report) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        os.kill(pids[victim], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the nanny restarts it; wait for the replacement
            workers = client.scheduler_info()["workers"]
            if victim not in workers and len(workers) == 2:
                break
            time.sleep(0.2)
        assert sum(client.gather(client.map(_square, range(4)))) == 14
    assert report.workers_lost == [victim]
    assert report.workers_joined >= 3
    assert any(
        "1 lost unexpectedly" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )


SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, time
    from eftflow.cluster import dask_client

    def main():
        logging.basicConfig(level=logging.INFO)
        try:
            with dask_client({cfg!r}, threads=2, memory_mb=2000) as client:
                pids = sorted(set(client.run(os.getpid).values()) - {{os.getpid()}})
                print("READY", *pids, flush=True)
                while True:  # short tasks: a busy worker would delay the shutdown
                    client.submit(time.sleep, 0.1, pure=False).result()
        except KeyboardInterrupt:
            print("INTERRUPTED", flush=True)
            sys.exit(130)

    if __name__ == "__main__":
        main()
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.parametrize(
    ("signum", "cfg"),
    [(signal.SIGINT, PROCESSES), (signal.SIGTERM, THREADS)],
    ids=["SIGINT-processes", "SIGTERM-threads"],
)
def test_signal_releases_workers(tmp_path, signum, cfg):
    """Ctrl-C (SIGINT) and SIGTERM (scancel, time limit, Snakemake) end the step and its workers."""
    script = tmp_path / "step.py"
    script.write_text(SCRIPT.format(cfg=cfg))
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), line + proc.stderr.read()
        workers = [int(p) for p in line.split()[1:]]
        assert len(workers) == (2 if cfg["local"]["processes"] else 0)
        assert all(_alive(p) for p in workers)
        time.sleep(0.5)  # let the task start
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out
    assert "workers released" in err
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)], "worker processes left behind"


def test_taken_dashboard_port_falls_back_to_a_free_one():
    """A second job on the node must not fail or warn because another cluster holds the port."""
    import socket

    from eftflow.cluster.local import free_dashboard_address

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert free_dashboard_address(f"127.0.0.1:{port}") == "127.0.0.1:0"
    assert free_dashboard_address(f"127.0.0.1:{port}") == f"127.0.0.1:{port}"  # free again
    assert free_dashboard_address(":0") == ":0"
    assert free_dashboard_address(None) is None
