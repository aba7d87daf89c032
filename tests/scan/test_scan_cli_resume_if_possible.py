"""`eftflow run-scan --resume-if-possible` (what the workflow's rule run_scan runs): a checkpoint
of the same scan file is continued, anything else starts afresh."""

from __future__ import annotations

import json

import yaml

from eftflow.cli import main


def _scanfile(tmp_path, make_scan, n_points):
    path = tmp_path / "scan.yaml"
    spec = make_scan("random", {"n_points": n_points, "batch_size": 50}, printer={"name": "ascii"})
    path.write_text(yaml.safe_dump(spec))
    return path


def _rows(out):
    return json.loads((out / "checkpoint.json").read_text())["committed_rows"]


def test_resume_if_possible_continues_then_restarts_on_a_changed_file(tmp_path, make_scan, capsys):
    out = tmp_path / "out"
    scanfile = _scanfile(tmp_path, make_scan, 400)
    # no checkpoint yet: a fresh scan (an interrupted one here, exit status 3)
    argv = ["-v", "run-scan", str(scanfile), "-o", str(out), "--resume-if-possible"]
    assert main([*argv, "--stop-after", "100"]) == 3
    assert _rows(out) == 100 and not (out / "summary.json").exists()
    # the same file: continued from the checkpoint to the end
    assert main(argv) == 0
    assert "resume: replayed 100 committed points" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["n_points"] == 400
    # a changed scan file: started afresh over the old output, with a warning
    scanfile = _scanfile(tmp_path, make_scan, 300)
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "is of another scan file (scanner.options.n_points differs): starting afresh" in err
    assert json.loads((out / "summary.json").read_text())["n_points"] == 300
