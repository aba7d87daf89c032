"""Workflow overheads: Snakefile parse time, dry run of a 1000-job DAG, the SLURM profile's per-job
overhead, and the demo's wall time by stage.

Each Snakemake measurement runs side by side with a *bare* Snakefile of the same shape (the same
rules, wildcards and job count, with `touch` commands, no config, schema or imports), in the same
run, best of ``--repeat`` runs. Goals (issue 8): parse ≤ 1.5× bare, dry run ≤ 2× bare.

Usage::

    .venv/bin/python benchmarks/workflow.py                        # all parts
    .venv/bin/python benchmarks/workflow.py --demo-dir /path/run   # stage times of a finished run
    .venv/bin/python benchmarks/workflow.py --skip-slurm

Writes benchmarks/results/workflow.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PARTS = ("Snakefile", "workflow", "config", "profiles", "envs")

BARE = """
N_JOBS = {n_jobs}
SAMPLES = ["sm", "t1"]
JOBS = [(s, j) for s in SAMPLES for j in range(N_JOBS // len(SAMPLES))]


rule all:
    input:
        "results/report/report.html",


rule setup:
    output:
        "results/setup/setup.h5",
    shell:
        "touch {{output}}"


rule generate_events:
    input:
        "results/setup/setup.h5",
    output:
        "results/generate_events/{{sample}}/{{job}}.zarr",
    shell:
        "touch {{output}}"


rule combine_events:
    input:
        [f"results/generate_events/{{s}}/{{j}}.zarr" for s, j in JOBS],
    output:
        "results/combine_events/events.zarr",
    shell:
        "touch {{output}}"


rule augment_samples:
    input:
        "results/combine_events/events.zarr",
    output:
        "results/augment_samples/done",
    shell:
        "touch {{output}}"


rule compute_fisher_information:
    input:
        "results/combine_events/events.zarr",
    output:
        "results/compute_fisher_information/fisher_information.json",
    shell:
        "touch {{output}}"


rule make_report:
    input:
        "results/augment_samples/done",
        "results/compute_fisher_information/fisher_information.json",
    output:
        "results/report/report.html",
    shell:
        "touch {{output}}"
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


def _timed(args, cwd, repeat: int, timeout: int = 900) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(
            args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{proc.stderr[-3000:]}")
        best = min(best, wall)
    return best


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for part in PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / part)
    return dest


def _toy_config(dest: Path, n_jobs: int) -> Path:
    """The toy example with ``n_jobs`` generator jobs in all (2 samples)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "config/examples/toy.yaml").read_text())
    cfg["generation"]["n_jobs"] = n_jobs // len(cfg["generation"]["samples"])
    path = dest / f"toy_{n_jobs}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def parse_and_dry_run(tmp: Path, n_jobs: int, repeat: int) -> list[dict]:
    ours = _copy_workflow(tmp / "ours")
    cfg = _toy_config(ours, n_jobs)
    bare = tmp / "bare"
    bare.mkdir()
    (bare / "Snakefile").write_text(BARE.format(n_jobs=n_jobs))
    base = ["snakemake", "--workflow-profile", "none"]
    rows = []
    # parse: the Snakefile with the toy config (the DAG is not built by --list-rules)
    t_ours = _timed([*base, "--list-rules", "--configfile", cfg.name], ours, repeat)
    t_bare = _timed([*base, "--list-rules"], bare, repeat)
    rows.append(_row(f"parse (`--list-rules`), {n_jobs}-job config", t_ours, t_bare, 1.5))
    target = "all_report"
    t_ours = _timed([*base, target, "-n", "-q", "all", "--configfile", cfg.name], ours, repeat)
    t_bare = _timed([*base, "-n", "-q", "all"], bare, repeat)
    rows.append(_row(f"dry run, {n_jobs + 6}-job DAG (`-n {target}`)", t_ours, t_bare, 2.0))
    return rows


def _row(what: str, ours: float, bare: float, goal: float) -> dict:
    ratio = ours / bare
    return {
        "measurement": what,
        "eftflow [s]": round(ours, 3),
        "bare Snakefile [s]": round(bare, 3),
        "ratio": round(ratio, 2),
        "goal": f"≤ {goal}×",
        "met": "yes" if ratio <= goal else "no",
    }


def _slurm_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return proc.returncode == 0 and any(s.startswith(("idle", "mix")) for s in proc.stdout.split())


def slurm_overhead(tmp: Path, n: int = 4) -> list[dict]:
    """Wall time of ``n`` independent trivial jobs (+ one that gathers them) locally and through
    profiles/slurm (with the test settings: first status check after 2 s, then every 2 s)."""
    wf = tmp / "slurm_bare"
    wf.mkdir()
    (wf / "profiles").mkdir()
    shutil.copytree(ROOT / "profiles/slurm", wf / "profiles/slurm")
    (wf / "Snakefile").write_text(
        f"rule all:\n    input:\n        expand('out/{{i}}.txt', i=range({n})),\n\n\n"
        "rule job:\n    output:\n        'out/{i}.txt',\n    resources:\n        mem_mb=200,\n"
        "        runtime=5,\n    shell:\n        'echo ${{SLURM_JOB_ID:-local}} > {output}'\n"
    )
    fast = [
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
    ]
    local = _timed(["snakemake", "--cores", "2", "--forceall"], wf, 1)
    shutil.rmtree(wf / "out")
    slurm = _timed(["snakemake", "--profile", "profiles/slurm", "--forceall", *fast], wf, 1)
    ids = {p.read_text().strip() for p in (wf / "out").glob("*.txt")}
    return [
        {
            "measurement": f"{n} trivial jobs, local `--cores 2`",
            "eftflow [s]": round(local, 2),
        },
        {
            "measurement": f"{n} trivial jobs via profiles/slurm (init 2 s, checks every 2 s)",
            "eftflow [s]": round(slurm, 2),
            "per-job overhead [s]": round((slurm - local) / n, 2),
            "note": f"{len(ids)} SLURM job ids, jobs run in parallel (--jobs from the profile)",
        },
    ]


def stage_times(run_dir: Path) -> list[dict]:
    """Wall time, CPU time and peak memory by rule, from the benchmark TSV files of a run (as the
    report reads them: CPU and memory of jobs too short for Snakemake's sampler are not known)."""
    from eftflow.report.sections.resources import read_benchmarks, sampled

    per = defaultdict(lambda: {"jobs": 0, "s": 0.0, "max_s": 0.0, "cpu": 0.0, "rss": 0.0, "n": 0})
    for r in read_benchmarks(run_dir / "benchmarks/runs"):
        agg = per[r["rule"]]
        agg["jobs"] += 1
        agg["s"] += float(r.get("s") or 0.0)
        agg["max_s"] = max(agg["max_s"], float(r.get("s") or 0.0))
        if sampled(r):
            agg["n"] += 1
            agg["cpu"] += float(r.get("cpu_time") or 0.0)
            agg["rss"] = max(agg["rss"], float(r.get("max_rss") or 0.0))
    return [
        {
            "measurement": f"stage {rule}",
            "jobs": a["jobs"],
            "wall, sum of jobs [s]": round(a["s"], 2),
            "longest job [s]": round(a["max_s"], 2),
            "CPU [s]": round(a["cpu"], 2) if a["n"] else "– (too short to sample)",
            "max RSS [MB]": round(a["rss"], 1) if a["n"] else "–",
        }
        for rule, a in sorted(per.items(), key=lambda kv: -kv[1]["s"])
    ]


def demo_run(tmp: Path) -> tuple[Path, float]:
    """Run the toy demo to the report; (its directory, elapsed wall time)."""
    wf = _copy_workflow(tmp / "demo")
    t = _timed(
        ["snakemake", "--cores", "2", "all_report", "--configfile", "config/examples/toy.yaml"],
        wf,
        1,
    )
    return wf, t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-jobs", type=int, default=1000, help="generator jobs of the big DAG")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--skip-slurm", action="store_true")
    ap.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="a finished run (its benchmarks/runs/) for the stage times; default: run the toy demo",
    )
    args = ap.parse_args(argv)
    import snakemake

    rows, meta = [], {"snakemake": snakemake.__version__, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="eftflow-wf-bench-") as tmp:
        tmp = Path(tmp)
        rows += parse_and_dry_run(tmp, args.n_jobs, args.repeat)
        if args.skip_slurm:
            meta["slurm"] = "skipped (--skip-slurm)"
        elif _slurm_up():
            rows += slurm_overhead(tmp)
        else:
            meta["slurm"] = "SLURM is not running here: per-job overhead not measured"
        if args.demo_dir is None:
            demo, elapsed = demo_run(tmp)
            meta["demo"] = "toy example (config/examples/toy.yaml) to all_report, --cores 2"
            rows.append(
                {"measurement": "toy demo end to end (elapsed)", "eftflow [s]": round(elapsed, 2)}
            )
        else:
            demo = args.demo_dir
            meta["demo"] = f"benchmark files of {demo}"
        rows += stage_times(demo)
    write_results("workflow", rows, meta=meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
