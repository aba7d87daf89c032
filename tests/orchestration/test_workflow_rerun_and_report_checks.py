"""What reruns and what the report says: cluster settings outside params, parse-time checks of
the training set, one run's benchmarks, intervals at the grid edge, a config that does not match
the results, and the README's target list."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from eftflow.report import build_report
from eftflow.report.registry import ReportContext

ROOT = Path(__file__).resolve().parents[2]


def _run(args, cwd, env, timeout=300):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# -- cluster settings reach the jobs outside `params:` ------------------------------------------
@pytest.mark.integration
def test_changing_the_cluster_section_reruns_nothing(toy_run, toy_args, run_env, tmp_path):
    """After a complete run, another Dask mode and dashboard address schedule no job."""
    other = tmp_path / "cluster.yaml"
    other.write_text(
        yaml.safe_dump(
            {
                "cluster": {
                    "mode": "slurm-cluster",
                    "dashboard_address": ":0",
                    "slurm": {"queue": "short", "memory": "8GB"},
                }
            }
        )
    )
    proc = _run(["snakemake", "-n", "all_report", *toy_args, str(other)], toy_run, run_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Nothing to be done" in out, out[-3000:]


def test_no_rule_passes_the_cluster_section_in_params():
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        text = path.read_text()
        assert not re.search(r"stage_config\([^)]*\"cluster\"", text), path.name
        assert "config_json(config)" not in text, path.name  # the whole config has `cluster`
    common = (ROOT / "workflow/rules/common.smk").read_text()
    assert '"cluster": config["cluster"]' not in common


def test_dask_client_without_settings_reads_the_environment(monkeypatch):
    from eftflow.cluster import dask_client
    from eftflow.cluster.settings import CLUSTER_ENV, cluster_config_from_env
    from eftflow.errors import ConfigError

    monkeypatch.delenv(CLUSTER_ENV, raising=False)
    assert cluster_config_from_env() is None
    monkeypatch.setenv(CLUSTER_ENV, '{"mode": "slurm-runner", "startup_timeout": 5}')
    assert cluster_config_from_env() == {"mode": "slurm-runner", "startup_timeout": 5}
    # the settings are validated before anything starts: a bad mode from the environment is
    # reported as coming from there
    monkeypatch.setenv(CLUSTER_ENV, '{"mode": "nowhere"}')
    with pytest.raises(ConfigError) as err, dask_client(None):
        pass
    assert "EFTFLOW_CLUSTER_CONFIG" in str(err.value) and "cluster.mode" in str(err.value)
    monkeypatch.setenv(CLUSTER_ENV, "[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        cluster_config_from_env()


# -- training.method / training.training_set are checked before anything runs -------------------
def test_training_set_kinds_table_matches_the_library():
    from eftflow.ml.data import SAMPLE_KINDS

    tree = ast.parse((ROOT / "workflow/rules/common.smk").read_text())
    (node,) = [
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "TRAINING_SET_KINDS"
    ]
    table = ast.literal_eval(node)
    assert {k: tuple(v) for k, v in table.items()} == SAMPLE_KINDS


@pytest.mark.parametrize(
    ("training", "words"),
    [
        ({"training_set": "nope"}, ["training.training_set 'nope'", "augmentation.samples"]),
        (
            {"method": "carl", "training_set": "train_local"},
            ["training.training_set 'train_local'", "'local'", "training.method 'carl'", "ratio"],
        ),
    ],
)
def test_wrong_training_set_fails_at_parse_time(workflow_copy, run_env, training, words):
    (workflow_copy / "bad.yaml").write_text(yaml.safe_dump({"training": training}))
    args = ["snakemake", "-n", "all", "--configfile", "config/config.yaml", "bad.yaml"]
    proc = _run(args, workflow_copy, run_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in out, out[-3000:]
    assert not (workflow_copy / "results").exists()


# -- the time/memory section counts this run's benchmark files only -----------------------------
def _tsv(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{seconds}\t0:00:01\t100.0\t{seconds}\n")


def test_benchmarks_of_named_runs_are_left_out_of_the_unnamed_run(tmp_path):
    from eftflow.report.sections.resources import other_run_dirs, read_benchmarks

    runs = tmp_path / "benchmarks/runs"
    _tsv(runs / "setup/setup.tsv", 1.0)
    _tsv(runs / "generate_events/sm/0.tsv", 2.0)
    _tsv(runs / "generate_events/sm/1.tsv", 3.0)
    for name in ("big", "scan.v2"):  # two named runs: benchmarks/runs/<run_name>/<rule>/...
        _tsv(runs / name / "setup/setup.tsv", 100.0)
        _tsv(runs / name / "generate_events/sm/0.tsv", 200.0)
    assert other_run_dirs(runs) == ["big", "scan.v2"]
    rows = read_benchmarks(runs)
    assert sorted((r["rule"], r["job"]) for r in rows) == [
        ("generate_events", "sm/0"),
        ("generate_events", "sm/1"),
        ("setup", "setup"),
    ]
    assert sum(r["s"] for r in rows) == 6.0
    named = read_benchmarks(runs / "big")  # a named run's report reads its own directory
    assert sum(r["s"] for r in named) == 300.0
    assert len(read_benchmarks(runs, exclude=())) == 7  # explicit: everything

    (tmp_path / "results").mkdir()
    out = tmp_path / "report.html"
    info = build_report(tmp_path / "results", out, benchmarks=runs, workdir=tmp_path)
    assert "Time and memory per rule" not in info["skipped"]
    html = out.read_text()
    assert "Left out: the benchmark files of the runs big, scan.v2" in html
    assert "all 3 jobs" in html


# -- intervals that reach the grid edge ---------------------------------------------------------
def _limits_json(results: Path, with_open: bool) -> None:
    like = {
        "levels": {"0.68": 0.99, "0.95": 3.84},
        "intervals": {"0.68": [[-0.001, 0.001]], "0.95": [[-0.005, 0.007]]},
    }
    if with_open:
        like["intervals_open"] = {"0.68": [[True, True]], "0.95": [[False, False]]}
    data = {"grids": [{"parameters": ["W"], "likelihoods": {"fisher:rate": like}}]}
    (results / "compute_limits").mkdir(parents=True)
    (results / "compute_limits/limits.json").write_text(json.dumps(data))


@pytest.mark.parametrize("with_open", [True, False])
def test_report_marks_interval_ends_at_the_grid_edge(tmp_path, with_open):
    from eftflow.report.sections.limits import limits

    _limits_json(tmp_path, with_open)
    html = limits(ReportContext(results=tmp_path, workdir=tmp_path))
    if with_open:
        assert "[≤ -0.001 (grid edge), ≥ 0.001 (grid edge)]" in html
        assert "reach the edge of their θ grid: W (fisher:rate, CL 68 %)" in html
        assert 'class="warn"' in html
    else:  # a limits.json without intervals_open (older versions): plain intervals
        assert "[-0.001, 0.001]" in html and "grid edge" not in html
    assert "[-0.005, 0.007]" in html


# -- make-report with a config that does not match the results ----------------------------------
@pytest.mark.integration
def test_report_warns_when_the_config_does_not_match_the_results(toy_run, tmp_path, capfd):
    from eftflow.config import load_config
    from eftflow.report.sections.overview import config_mismatches

    # the workflow's own report: its config is the run's, no warning (this also keeps
    # SETUP_SECTIONS in step with rule setup's params)
    html = (toy_run / "results/report/report.html").read_text()
    assert "does not match these results" not in html
    toy = load_config(toy_run / "config/examples/toy.yaml")
    ctx = ReportContext(results=toy_run / "results", config=toy, workdir=toy_run)
    assert config_mismatches(ctx) == []

    other = load_config(toy_run / "config/config.yaml")  # parameters W, Y: not the toy's
    out = tmp_path / "report.html"
    build_report(toy_run / "results", out, config=other, workdir=toy_run)
    html = out.read_text()
    assert "The config given does not match these results" in html
    assert "parameters (W, Y) are not those of results/setup/setup.h5 (theta_1, theta_2)" in html
    seeded = dict(toy, seed=toy["seed"] + 1)  # same parameters, other setup sections: the hash
    problems = config_mismatches(
        ReportContext(results=toy_run / "results", config=seeded, workdir=toy_run)
    )
    assert len(problems) == 1 and "was made with" in problems[0]


# -- README and docs ------------------------------------------------------------------------------
def test_readme_lists_every_target_rule_and_forcerun_comes_last():
    rules = set()
    for path in [ROOT / "Snakefile", *(ROOT / "workflow/rules").glob("*.smk")]:
        rules |= set(re.findall(r"^rule (all_\w+):", path.read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(r for r in rules if not re.search(rf"\b{r}\b", readme))
    assert not missing, f"README.md does not list {missing}"
    for doc in ("README.md", "docs/orchestration.md"):
        text = (ROOT / doc).read_text()
        # --forcerun takes several values: a target after it would be forced too
        bad = re.findall(r"^snakemake .*--forcerun(?:\s+\w+)+\s+all\w*", text, re.M)
        assert not bad, f"{doc}: {bad}"


def test_jobs_too_short_to_sample_show_no_cpu_or_memory(tmp_path):
    """Snakemake samples CPU and memory about once a second: a job that ended sooner has CPU 0 s
    and the few MB of its shell, which the report must not present as a measurement."""
    from eftflow.report.sections.resources import read_benchmarks, sampled

    runs = tmp_path / "benchmarks/runs"
    _tsv(runs / "setup/setup.tsv", 4.0)  # sampled: 100 MB, 4 s CPU
    short = runs / "combine_events/combine_events.tsv"
    short.parent.mkdir(parents=True)
    short.write_text("s\th:m:s\tmax_rss\tcpu_time\n0.6\t0:00:00\t3.09\t0.00\n")
    rows = {r["rule"]: r for r in read_benchmarks(runs)}
    assert sampled(rows["setup"]) and not sampled(rows["combine_events"])
    (tmp_path / "results").mkdir()
    out = tmp_path / "report.html"
    build_report(tmp_path / "results", out, benchmarks=runs, workdir=tmp_path)
    html = out.read_text()
    row = html[html.index("<td>combine_events</td>") :].split("</tr>")[0]
    assert row.count("<td>–</td>") == 2 and "3.09" not in row
    assert "ended before the first sample" in html
