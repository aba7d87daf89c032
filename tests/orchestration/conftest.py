"""Fixtures of the orchestration tests: a single-node SLURM cluster, a scratch copy of the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
WORKFLOW_PARTS = ("Snakefile", "workflow", "config", "profiles", "envs")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _slurm_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return proc.returncode == 0 and any(
        s.startswith(("idle", "mixed", "alloc")) for s in proc.stdout.split()
    )


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running single-node SLURM (started with workflow/scripts/slurm-local-up.sh when needed).

    Skips when SLURM is not running and cannot be started here (not root, no apt-get); in CI
    (CI=true) that is a failure instead: the SLURM tests must run there. The cluster is left
    running (the script is idempotent; stop it with workflow/scripts/slurm-local-down.sh).
    """
    if _slurm_up():
        return
    reason = None
    if os.geteuid() != 0:
        reason = "SLURM is not running and starting it needs root"
    elif not (shutil.which("slurmctld") or shutil.which("apt-get")):
        reason = "SLURM is not installed and apt-get is not available to install it"
    if reason:
        if _in_ci():
            pytest.fail(f"{reason} (CI must run the slurm tests)")
        pytest.skip(reason)
    proc = subprocess.run(
        ["bash", str(ROOT / "workflow/scripts/slurm-local-up.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 or not _slurm_up():
        message = f"slurm-local-up.sh failed ({proc.returncode}): {proc.stderr[-2000:]}"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def run_env() -> dict:
    """The environment with this interpreter's bin directory (snakemake, eftflow) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """A scratch copy of the workflow (Snakefile, workflow/, config/, profiles/, envs/)."""
    dest = tmp_path / "wf"
    dest.mkdir()
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow parts (Snakefile, workflow/, config/, profiles/, envs/) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def subprocess_env() -> dict:
    """The environment for snakemake/eftflow subprocesses (this interpreter's bin first on PATH)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


#: `snakemake` arguments of a run of the toy example (config/examples/toy.yaml alone)
TOY = ["--configfile", "config/examples/toy.yaml"]


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> Path:
    """The toy example run once, uninterrupted, to the report (`snakemake --cores 2 all_report`)."""
    wf = copy_workflow(tmp_path_factory.mktemp("toy_run") / "wf")
    proc = subprocess.run(
        ["snakemake", "--cores", "2", "all_report", *TOY],
        cwd=wf,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return wf


@pytest.fixture
def toy_args() -> list[str]:
    """`snakemake` arguments selecting the toy example config alone."""
    return list(TOY)


@pytest.fixture
def new_workflow_copy():
    """A function ``(dest) -> dest`` copying the workflow into a new directory."""
    return copy_workflow
