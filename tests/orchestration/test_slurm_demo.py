"""The demo DAG (toy example: setup → generate → combine → augment + Fisher → report) through
`--profile profiles/slurm` on the local SLURM, every job's SLURM job id in its provenance."""

from __future__ import annotations

import json
import re
import subprocess

import h5py
import pytest

from eftflow.store.events import EventStore

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

FAST = [
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--seconds-between-status-checks",
    "2",
    "--slurm-keep-successful-logs",
    # the test node has 4 CPUs: let augmentation and Fisher information run side by side
    "--set-threads",
    "augment_samples=2",
    "compute_fisher_information=2",
]
# tiny: 2 samples x 1 job, few events, small training sets, no statistical model (no ratio set)
TINY = """
generation:
  n_events_per_job: 2000
  n_jobs: 1
morphing: {n_trials: 5, n_test_thetas: 20}
augmentation:
  samples:
    - {name: train_local, method: local, theta: sm, n_samples: 500}
    - {name: test, method: test, theta: sm, n_samples: 200}
model: {demo: {enabled: false}}
"""


def test_demo_dag_runs_as_slurm_jobs_with_their_ids_recorded(
    slurm, workflow_copy, run_env, toy_args
):
    (workflow_copy / "tiny.yaml").write_text(TINY)
    args = ["snakemake", "all_report", "--profile", "profiles/slurm", "--jobs", "4", *FAST]
    args += [*toy_args, "tiny.yaml"]
    proc = subprocess.run(
        args, cwd=workflow_copy, env=run_env, capture_output=True, text=True, timeout=600
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    submitted = dict(
        (int(j), s)
        for j, s in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out)
    )
    rules = dict(
        (s, r)
        for r in ("setup", "generate_events", "combine_events", "plot_distributions",
                  "augment_samples", "train_ensemble", "evaluate_estimator", "make_report")
        for s in [p.stem for p in (workflow_copy / f".snakemake/slurm_logs/rule_{r}").rglob("*.log")]
    )  # fmt: skip
    # Fisher information and limits are grouped: one SLURM job runs both
    (group_log,) = (workflow_copy / ".snakemake/slurm_logs").glob("group_fisher_and_limits*/*.log")
    rules[group_log.stem] = "group fisher_and_limits"
    for rule in ("compute_fisher_information", "compute_limits"):
        assert f"(Rule: {rule})" in group_log.read_text()
    # the two generator jobs went to SLURM as one job array: their logs are <array>_<task>
    arrays = {s.split("_")[0] for s, r in rules.items() if r == "generate_events"}
    assert len(arrays) == 1 and len(job_ids := [s for s in rules if "_" in s]) == 2, rules
    # (a group job is announced differently; every other submission has its own log)
    assert set(submitted.values()) - arrays <= set(rules) - set(job_ids), (submitted, rules)
    assert sorted(set(rules.values())) == sorted(
        ["setup", "generate_events", "combine_events", "plot_distributions", "augment_samples",
         "group fisher_and_limits", "train_ensemble", "evaluate_estimator", "make_report"]
    )  # fmt: skip
    results = workflow_copy / "results"

    def job_of(rule):
        ids = [s for s, r in rules.items() if r == rule]
        return ids

    with h5py.File(results / "setup/setup.h5") as f:
        assert json.loads(f.attrs["provenance"])["slurm_job_id"] in job_of("setup")
    generated = sorted((results / "generate_events").glob("*/*.zarr"))
    provs = [EventStore(p).provenance for p in generated]
    tasks = {f"{p['slurm_array_job_id']}_{p['slurm_array_task_id']}" for p in provs}
    assert len(generated) == 2 and tasks == set(job_of("generate_events"))
    ids = {p["slurm_job_id"] for p in provs}
    combined = EventStore(results / "combine_events/events.zarr")
    assert [combined.provenance["slurm_job_id"]] == job_of("combine_events")
    assert {p["slurm_job_id"] for p in combined.provenance["inputs"]} == ids
    html = (results / "report/report.html").read_text()
    prov = json.loads(
        re.search(r'id="eftflow-provenance">(.*?)</script>', html).group(1).replace("<\\/", "</")
    )
    assert [prov["slurm_job_id"]] == job_of("make_report")
    # the slurm ids show up in the report's provenance table
    assert all(f"<td>{i}</td>" in html for i in ids)
    (log,) = (workflow_copy / ".snakemake/slurm_logs/rule_augment_samples").rglob("*.log")
    assert "Finished jobid: 0 (Rule: augment_samples)" in log.read_text()
