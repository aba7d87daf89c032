"""``eftflow --help``: every workflow rule has its command, listed in workflow order."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from eftflow.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001 - argparse API
    return [a.dest for a in sub._choices_actions]  # noqa: SLF001


def test_every_rule_has_a_command():
    rules = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        rules |= set(re.findall(r"^\s*rule (\w+):", smk.read_text(), flags=re.M))
    stages = {r for r in rules if not r.startswith("all")}
    # rules whose command has another name (an alias of the same command)
    aliases = {
        "run_inference": "infer",
        "run_scan": "scan",
        "train_ratio_ensemble": "train-ensemble",
    }
    commands = set(_commands())
    missing = {r for r in stages if aliases.get(r, r.replace("_", "-")) not in commands}
    assert stages and not missing


def test_commands_are_listed_in_workflow_order():
    order = [
        "setup",
        "generate-events",
        "shower-events",
        "simulate-detector",
        "analyse-events",
        "combine-events",
        "augment-samples",
        "train-estimator",
        "compute-limits",
        "build-model",
        "scan",
        "make-report",
    ]
    listed = _commands()
    assert [c for c in listed if c in order] == order


def test_help_runs_and_names_the_docs():
    res = subprocess.run(
        [sys.executable, "-m", "eftflow", "--help"], capture_output=True, text=True, check=True
    )
    assert "setup" in res.stdout and "docs/index.md" in res.stdout
    assert res.stdout.index(" setup ") < res.stdout.index(" make-report ")


def test_resource_and_chunk_counts_must_be_positive(capsys):
    import pytest

    from eftflow.cli import main

    for argv in (
        ["combine-events", "a.zarr", "-o", "b.zarr", "--memory-mb", "0"],
        ["import-madminer", "x.h5", "y.zarr", "--chunk-size", "-5"],
        ["analyse-events", "o.zarr", "--setup", "s.h5", "-o", "e.zarr", "--threads", "0"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert "expected an integer >= 1" in capsys.readouterr().err
