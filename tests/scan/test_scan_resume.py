"""Resume: interrupted scans finish with exactly the points of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eftflow.errors import ConfigError, InputError
from eftflow.inference.scan import ScanInterrupted, run_scan
from eftflow.inference.scan.analysis import load_scan

CASES = {
    "random": {"n_points": 600, "batch_size": 50},
    "de": {"popsize": 8, "maxiter": 15},
    "mcmc": {"n_chains": 4, "n_steps": 150, "adapt_start": 20},
    "dynesty": {"nlive": 50, "dlogz": 1.0},
}
COLUMNS = ["LogLike", "unitCubeParameters[0]", "unitCubeParameters[1]", "pointID", "MPIrank"]


@pytest.mark.parametrize("scanner", sorted(CASES))
@pytest.mark.parametrize("printer", ["hdf5", "ascii"])
def test_interrupt_and_resume_equals_uninterrupted(scanner, printer, tmp_path, make_scan):
    spec = make_scan(scanner, CASES[scanner], printer={"name": printer, "buffer": 40})
    ref = run_scan(spec, output=tmp_path / "ref")
    with pytest.raises(ScanInterrupted):
        run_scan(spec, output=tmp_path / "cut", stop_after=130)
    ckpt = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())
    assert ckpt["committed_rows"] >= 130 and not ckpt["complete"]
    with pytest.raises(ScanInterrupted):  # a second interruption, during the replay-free part
        run_scan(spec, output=tmp_path / "cut", resume=True, stop_after=70)
    done = run_scan(spec, output=tmp_path / "cut", resume=True)
    assert done.n_points == ref.n_points
    a, b = load_scan(tmp_path / "ref").rows, load_scan(tmp_path / "cut").rows
    for col in COLUMNS:
        np.testing.assert_array_equal(a[col][0], b[col][0], err_msg=col)
    ids = list(zip(b["MPIrank"][0], b["pointID"][0]))
    assert len(set(ids)) == len(ids)
    if "Posterior" in a:
        np.testing.assert_allclose(a["Posterior"][0], b["Posterior"][0])
    assert done.info.get("logZ") == ref.info.get("logZ")


def test_resume_refuses_changed_scan_file(tmp_path, make_scan):
    spec = make_scan("random", {"n_points": 200, "batch_size": 50})
    with pytest.raises(ScanInterrupted):
        run_scan(spec, output=tmp_path, stop_after=100)
    spec["models"]["M"]["parameters"]["x"]["range"] = [-2, 2]
    with pytest.raises(ConfigError, match=r"models\.M\.parameters\.x\.range"):
        run_scan(spec, output=tmp_path, resume=True)


def test_resume_refuses_corrupt_checkpoint(tmp_path, make_scan):
    spec = make_scan("random", {"n_points": 200, "batch_size": 50})
    with pytest.raises(ScanInterrupted):
        run_scan(spec, output=tmp_path, stop_after=100)
    (tmp_path / "checkpoint.json").write_text('{"format": 1, "committed_')
    before = (tmp_path / "samples.hdf5").read_bytes()
    with pytest.raises(InputError, match="corrupt"):
        run_scan(spec, output=tmp_path, resume=True)
    assert (tmp_path / "samples.hdf5").read_bytes() == before
    assert "committed_" in (tmp_path / "checkpoint.json").read_text()


def _cli(*args, env=None):
    exe = Path(sys.executable).parent / "eftflow"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "eftflow"]
    return [*cmd, *args]


def _slow_scanfile(tmp_path) -> Path:
    path = tmp_path / "scan.yaml"
    path.write_text(
        """\
seed: 5
imports: [scan_userfuncs]
models:
  M:
    parameters:
      x: {prior: flat, range: [-1, 1]}
      y: {prior: flat, range: [-1, 1]}
components:
  like: {function: "scan_userfuncs:slow_gaussian", options: {sleep: 0.002}}
scanner: {name: random, options: {n_points: 800, batch_size: 25}}
printer: {name: hdf5, buffer: 50}
"""
    )
    return path


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_cli_scan_resumes(sig, tmp_path):
    scanfile = _slow_scanfile(tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen(
        _cli("scan", str(scanfile), "-o", str(out)), env=env, stderr=subprocess.PIPE
    )
    ckpt = out / "checkpoint.json"
    deadline = time.time() + 60
    while time.time() < deadline:
        if ckpt.exists() and json.loads(ckpt.read_text() or "{}").get("committed_rows", 0) >= 100:
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 3, err
        assert b"--resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    done = subprocess.run(
        _cli("scan", str(scanfile), "-o", str(out), "--resume"), env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    rows = load_scan(out).rows
    assert len(rows["LogLike"][0]) == 800
    assert len(set(rows["pointID"][0])) == 800
    assert json.loads(done.stdout)["n_points"] == 800


@pytest.mark.integration
def test_interrupted_dynesty_scan_says_one_line(tmp_path):
    """SIGTERM while dynesty runs: exit status 3 and one message, no traceback."""
    scanfile = _slow_scanfile(tmp_path)
    text = scanfile.read_text().replace(
        "scanner: {name: random, options: {n_points: 800, batch_size: 25}}",
        "scanner: {name: dynesty, options: {nlive: 60, dlogz: 0.001}}",
    )
    scanfile.write_text(text.replace("sleep: 0.002", "sleep: 0.005"))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen(
        _cli("scan", str(scanfile), "-o", str(out)), env=env, stderr=subprocess.PIPE, text=True
    )
    ckpt = out / "checkpoint.json"
    deadline = time.time() + 60
    while time.time() < deadline:  # past the initial live points: dynesty's own loop runs
        if ckpt.exists() and json.loads(ckpt.read_text() or "{}").get("committed_rows", 0) >= 150:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("eftflow: scan interrupted (SIGTERM received after ")
    assert "--resume" in lines[0]
    assert not json.loads(ckpt.read_text())["complete"]
