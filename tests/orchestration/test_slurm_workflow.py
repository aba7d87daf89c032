"""The workflow through `--profile profiles/slurm` on a real single-node SLURM."""

from __future__ import annotations

import json
import re
import subprocess

import h5py
import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

FAST = ["--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]


def test_setup_stage_runs_as_a_slurm_job(slurm, workflow_copy, run_env):
    proc = subprocess.run(
        ["snakemake", "--profile", "profiles/slurm", "all_setup", *FAST],
        cwd=workflow_copy,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", out)
    assert len(submitted) == 1, out[-3000:]
    job_id = submitted[0]
    setup = workflow_copy / "results/setup/setup.h5"
    assert setup.is_file() and (workflow_copy / "results/setup/morphing_basis.png").is_file()
    # the job's own log, written by SLURM (sbatch --output): the rule ran inside job <job_id>
    slurm_log = workflow_copy / ".snakemake/slurm_logs/rule_setup" / f"{job_id}.log"
    text = slurm_log.read_text()
    assert "localrule setup:" in text and "Finished jobid: 0 (Rule: setup)" in text
    with h5py.File(setup) as f:
        provenance = json.loads(f.attrs["provenance"])
    assert provenance["seed"] == 20261123
    if "slurm_job_id" in provenance:  # recorded once make_provenance reads SLURM_JOB_ID
        assert str(provenance["slurm_job_id"]) == job_id


def test_profile_with_a_missing_partition_fails_clearly(slurm, workflow_copy, run_env):
    proc = subprocess.run(
        [
            "snakemake",
            "--profile",
            "profiles/slurm",
            "all_setup",
            *FAST,
            "--default-resources",
            "slurm_partition=no_such_partition",
            "runtime=5",
            "mem_mb=500",
        ],
        cwd=workflow_copy,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "no_such_partition" in out and "invalid partition" in out.lower(), out[-3000:]
    assert not (workflow_copy / "results/setup/setup.h5").exists()
