"""The output lock: a lock of another host is never removed; a provably stale one is."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eftflow.errors import InputError
from eftflow.inference.scan import ScanInterrupted, run_scan
from eftflow.inference.scan.checkpoint import RunLock

LINUX_PROC = Path("/proc/self/stat").exists()


def _write_lock(directory: Path, **record) -> Path:
    path = directory / ".lock"
    path.write_text(json.dumps(record))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_lock_of_another_host_is_refused_and_kept(tmp_path, live_pid):
    record = {
        "host": "node-elsewhere-042",
        "pid": live_pid,
        "taken": "2026-11-24T14:00:02+00:00",
        "slurm_job": "8123",
    }
    lock = _write_lock(tmp_path, **record)
    before = lock.read_text()
    with pytest.raises(InputError) as err:
        RunLock(tmp_path).acquire()
    msg = str(err.value)
    assert err.value.file == str(lock)
    for part in ("node-elsewhere-042", f"pid {live_pid}", "2026-11-24T14:00:02", "8123"):
        assert part in msg, msg
    assert f"delete {lock}" in msg and "never removed automatically" in msg
    assert lock.read_text() == before


def test_lock_of_another_host_with_dead_pid_is_kept(tmp_path):
    # the pid means nothing on this host: a dead pid here says nothing about the other host
    lock = _write_lock(tmp_path, host="node-elsewhere-042", pid=_dead_pid())
    before = lock.read_text()
    with pytest.raises(InputError, match="node-elsewhere-042"):
        RunLock(tmp_path).acquire()
    assert lock.read_text() == before


def test_resume_refused_while_another_host_holds_the_lock(tmp_path, make_scan):
    spec = make_scan("random", {"n_points": 200, "batch_size": 50})
    with pytest.raises(ScanInterrupted):
        run_scan(spec, output=tmp_path, stop_after=100)
    samples = (tmp_path / "samples.hdf5").read_bytes()
    ckpt = (tmp_path / "checkpoint.json").read_text()
    lock = _write_lock(tmp_path, host="node-elsewhere-042", pid=1, taken="yesterday")
    for kwargs in ({"resume": True}, {"force": True}):
        with pytest.raises(InputError, match=r"locked by a scan on another host.*pid 1"):
            run_scan(spec, output=tmp_path, **kwargs)
        assert lock.exists()
        assert (tmp_path / "samples.hdf5").read_bytes() == samples
        assert (tmp_path / "checkpoint.json").read_text() == ckpt
    lock.unlink()  # what the message tells the user to do once that scan is gone
    assert run_scan(spec, output=tmp_path, resume=True).n_points == 200
    assert not lock.exists()


def test_stale_lock_of_this_host_is_removed(tmp_path):
    _write_lock(tmp_path, host=socket.gethostname(), pid=_dead_pid())
    held = RunLock(tmp_path)
    held.acquire()
    mine = json.loads((tmp_path / ".lock").read_text())
    assert mine["pid"] == os.getpid() and mine["host"] == socket.gethostname()
    assert "taken" in mine
    held.release()
    assert not (tmp_path / ".lock").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary files left


def test_running_scan_of_this_host_is_refused_with_a_hint(tmp_path, live_pid):
    lock = _write_lock(tmp_path, host=socket.gethostname(), pid=live_pid)
    with pytest.raises(InputError) as err:
        RunLock(tmp_path).acquire()
    msg = str(err.value)
    assert f"pid {live_pid}" in msg and f"delete {lock}" in msg and "reused" in msg
    assert lock.exists()


def test_second_lock_in_one_directory_is_refused(tmp_path):
    first = RunLock(tmp_path)
    first.acquire()
    with pytest.raises(InputError, match="locked by another scan that is running"):
        RunLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / ".lock").exists()


@pytest.mark.skipif(not LINUX_PROC, reason="process start times need Linux /proc")
def test_lock_whose_pid_was_reused_is_removed(tmp_path, live_pid):
    # same host, the pid runs, but it is another process than the one that took the lock
    _write_lock(tmp_path, host=socket.gethostname(), pid=live_pid, process="other-boot:123")
    lock = RunLock(tmp_path)
    lock.acquire()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    lock.release()


def test_release_leaves_a_lock_it_does_not_hold(tmp_path):
    lock = RunLock(tmp_path)
    lock.acquire()
    other = _write_lock(tmp_path, host="node-elsewhere-042", pid=7)
    lock.release()
    assert json.loads(other.read_text())["host"] == "node-elsewhere-042"


def test_unreadable_lock_is_refused_and_kept(tmp_path):
    lock = tmp_path / ".lock"
    lock.write_text("{not json")
    with pytest.raises(InputError, match=r"unreadable.*delete"):
        RunLock(tmp_path).acquire()
    assert lock.read_text() == "{not json"


CONTENDER = """
import sys, time
from eftflow.errors import InputError
from eftflow.inference.scan.checkpoint import RunLock
lock = RunLock(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
try:
    lock.acquire()
except InputError:
    print("refused", flush=True)
else:
    print("held", flush=True)
    time.sleep(1.0)
    lock.release()
"""


def test_contending_scans_get_one_lock_even_over_a_stale_one(tmp_path):
    _write_lock(tmp_path, host=socket.gethostname(), pid=_dead_pid())
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(tmp_path), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["held", "refused", "refused", "refused"]
    assert not (tmp_path / ".lock").exists()
    assert list(tmp_path.iterdir()) == []


def test_removing_a_stale_lock_never_moves_a_live_one(tmp_path, monkeypatch):
    """A scan that saw a stale lock, while another scan has meanwhile replaced it by a live one,
    leaves the live lock in place at every moment: a lock moved aside even briefly could be
    taken by a third scan, and two scans would then write the same output."""
    stale = json.loads(
        _write_lock(tmp_path, host=socket.gethostname(), pid=_dead_pid()).read_text()
    )
    live_path = _write_lock(tmp_path, host="node-elsewhere-042", pid=7)
    live = live_path.read_text()
    gaps = []
    real = {name: getattr(os, name) for name in ("rename", "unlink", "link")}

    def watched(name):
        def call(*args, **kwargs):
            out = real[name](*args, **kwargs)
            if not live_path.exists() or live_path.read_text() != live:
                gaps.append(name)
            return out

        return call

    for name in real:
        monkeypatch.setattr(os, name, watched(name))
    RunLock(tmp_path)._remove_if_unchanged(stale)
    monkeypatch.undo()
    assert gaps == []
    assert live_path.read_text() == live
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


def test_a_stale_lock_breaker_is_removed_and_the_stale_lock_then_taken(tmp_path):
    _write_lock(tmp_path, host=socket.gethostname(), pid=_dead_pid())
    breaker = tmp_path / ".lock.break"
    breaker.write_text("{}")
    old = time.time() - 2 * RunLock.BREAKER_STALE_S
    os.utime(breaker, (old, old))
    lock = RunLock(tmp_path)
    lock.acquire()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert list(tmp_path.iterdir()) == []
