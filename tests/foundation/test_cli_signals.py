"""The eftflow command on SIGTERM and on paths it cannot write: no traceback, nothing left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eftflow.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _eftflow(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "eftflow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.mark.integration
def test_sigterm_removes_the_partial_output(tmp_path):
    setup = tmp_path / "setup.h5"
    assert (
        main(["setup", "--config", str(ROOT / "config/examples/toy.yaml"), "-o", str(setup)]) == 0
    )
    cfg = {"backend": "toy", "n_events_per_job": 50_000_000, "n_jobs": 1, "samples": {"sm": {}}}
    out = tmp_path / "out"
    proc = _eftflow(
        "generate-events", "--setup", str(setup), "--sample", "sm", "--job", "0",
        "-o", str(out / "sm.zarr"), "--config", json.dumps(cfg),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the temporary store exists
    assert proc.poll() is None, proc.communicate()
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "terminated" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_unwritable_output_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = main(
        [
            "setup",
            "--config",
            str(ROOT / "config/examples/toy.yaml"),
            "-o",
            str(tmp_path / "afile" / "s.h5"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "afile" in err
