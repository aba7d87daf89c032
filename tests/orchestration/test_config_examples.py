"""config/examples/: each validates against the schema; the toy and large ones dry-run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from eftflow.config import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("toy", "madgraph-delphes", "large")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates_against_the_schema(name):
    cfg = load_config(ROOT / f"config/examples/{name}.yaml")
    backend = {"toy": "toy", "madgraph-delphes": "madgraph", "large": "builtin"}[name]
    assert cfg["generation"]["backend"] == backend
    if name == "large":
        assert cfg["cluster"]["mode"] == "slurm-cluster"
        assert cfg["generation"]["n_jobs"] >= 100
    if name == "madgraph-delphes":
        assert cfg["detector"]["backend"] == "delphes" and cfg["generation"]["madgraph"]["process"]


def _dry_run(wf, env, configfile):
    proc = subprocess.run(
        ["snakemake", "all_report", "-n", "--configfile", configfile],
        cwd=wf,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    counts = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_toy_example_dry_run_replaces_the_default_config(workflow_copy, run_env):
    counts = _dry_run(workflow_copy, run_env, "config/examples/toy.yaml")
    # 2 samples x 2 jobs, no shower/detector/analysis for the toy backend
    assert counts["generate_events"] == 4 and "shower_events" not in counts
    assert counts["make_report"] == 1
    # the toy example ends with its statistical model too
    for rule in ("train_ratio_ensemble", "write_model_spec", "build_model", "run_inference"):
        assert counts[rule] == 1, rule


def test_large_example_dry_run(workflow_copy, run_env):
    """The large example's DAG, with fewer jobs per sample (4,000 jobs take ~20 s to plan)."""
    cfg = yaml.safe_load((workflow_copy / "config/examples/large.yaml").read_text())
    cfg["generation"]["n_jobs"] = 5
    (workflow_copy / "large5.yaml").write_text(yaml.safe_dump(cfg))
    counts = _dry_run(workflow_copy, run_env, "large5.yaml")
    for rule in ("generate_events", "shower_events", "simulate_detector", "analyse_events"):
        assert counts[rule] == 4 * 5, rule
    assert counts["combine_events"] == 1 and counts["make_report"] == 1


def test_invalid_config_fails_before_any_job(workflow_copy, run_env):
    """A config that does not validate stops the workflow at parse time: no job runs."""
    (workflow_copy / "bad.yaml").write_text("morphing:\n  n_trials: many\n")
    proc = subprocess.run(
        ["snakemake", "--cores", "1", "all_setup", "--configfile", "bad.yaml"],
        cwd=workflow_copy,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    # one line naming the file and the key, as the eftflow commands write it
    assert "bad.yaml: morphing.n_trials:" in proc.stdout + proc.stderr
    assert "many" in proc.stdout + proc.stderr
    assert not (workflow_copy / "results").exists() and not (workflow_copy / "logs").exists()
