"""The workflow itself: `snakemake --lint`, `snakefmt --check`, a dry run of `all`, parse time."""

from __future__ import annotations

import re
import resource
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the rules of the workflow's own statistical model (config model.demo)
MODEL_RULES = ("train_ratio_ensemble", "write_model_spec", "build_model", "run_inference")


def _run(args, cwd, env, timeout=300):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_snakemake_lint_is_clean(workflow_copy, run_env):
    proc = _run(["snakemake", "--lint"], workflow_copy, run_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def test_snakefmt_check_is_clean(run_env):
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]
    if _run(["snakefmt", "--check", *map(str, files)], ROOT, run_env, timeout=120).returncode == 0:
        return
    bad = []  # name the files that fail
    for path in files:
        proc = _run(["snakefmt", "--check", str(path)], ROOT, run_env, timeout=120)
        if proc.returncode != 0:
            bad.append(
                f"{path.relative_to(ROOT)}: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}"
            )
    assert not bad, "not snakefmt-formatted (run `snakefmt <file>`):\n" + "\n".join(bad)


def test_dry_run_of_all_with_the_default_config(workflow_copy, run_env):
    proc = _run(["snakemake", "-n", "all"], workflow_copy, run_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "workflow specific profile profiles/default" in out  # found automatically
    assert "setup" in out and "This was a dry-run" in out
    assert not (workflow_copy / "results").exists()
    # the demo ends with the statistical model: ratio ensemble, spec, build, fit, then the report;
    # the default config's scale systematic brings the up/down networks of its shape
    for rule in (*MODEL_RULES, "train_nuisance_shapes", "make_report"):
        assert re.search(rf"^{rule}\s+1$", out, re.M), rule


def test_nuisance_shapes_switched_off_leave_the_model_its_rate_effects(workflow_copy, run_env):
    """`model.demo.nuisance_shapes.enabled: false`: no up/down networks; the spec is still
    written (the systematics then enter through their rate only)."""
    (workflow_copy / "flat.yaml").write_text(
        "model:\n  demo:\n    nuisance_shapes:\n      enabled: false\n"
    )
    args = [
        "snakemake",
        "-n",
        "--quiet",
        "rules",
        "--configfile",
        "config/config.yaml",
        "flat.yaml",
    ]
    out = _run(args, workflow_copy, run_env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^write_model_spec\s+1$", out.stdout, re.M)
    assert not re.search(r"^train_nuisance_shapes\s", out.stdout, re.M)


def test_model_demo_switched_off_leaves_its_rules_out(workflow_copy, run_env):
    """`model.demo.enabled: false`: no ratio ensemble, spec, build or fit; the report stays."""
    (workflow_copy / "off.yaml").write_text("model:\n  demo:\n    enabled: false\n")
    args = ["snakemake", "-n", "--quiet", "rules", "--configfile", "config/config.yaml", "off.yaml"]
    proc = _run(args, workflow_copy, run_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^make_report\s+1$", out, re.M)
    assert not any(
        re.search(rf"^{r}\s", out, re.M) for r in (*MODEL_RULES, "train_nuisance_shapes")
    )


def test_installed_slurm_profile_is_found_by_bare_name(workflow_copy, run_env, tmp_path):
    from eftflow.cluster.profiles import install_profile

    run_env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    install_profile("slurm", tmp_path / "xdg" / "snakemake" / "slurm")
    proc = _run(["snakemake", "--profile", "slurm", "-n", "all_setup"], workflow_copy, run_env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Using profiles slurm and workflow specific profile profiles/default" in out


def _timed(args, cwd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = _run(args, cwd, env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return wall, cpu


def test_snakefile_parse_time(workflow_copy, run_env, tmp_path, capsys):
    """Measured, not asserted: the Snakefile is re-parsed by every SLURM job (DESIGN.md §6)."""
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "Snakefile").write_text(
        'rule all:\n    output:\n        "x"\n    shell:\n        "touch {output}"\n'
    )
    args = ["snakemake", "--list-rules", "--workflow-profile", "none"]
    ours = _timed(args, workflow_copy, run_env)
    base = _timed(args, bare, run_env)
    line = (
        f"Snakefile parse: `snakemake --list-rules` {ours[0]:.2f} s wall / {ours[1]:.2f} s CPU; "
        f"one-rule Snakefile {base[0]:.2f} s / {base[1]:.2f} s; "
        f"difference {ours[0] - base[0]:+.2f} s wall, {ours[1] - base[1]:+.2f} s CPU"
    )
    with capsys.disabled():
        print(f"\n{line}")
    assert ours[1] > 0 and base[1] > 0


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q", "-s"])
