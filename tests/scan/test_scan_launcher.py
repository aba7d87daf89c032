"""Several copies started without a working MPI (mpiexec, srun) are detected and refused."""

import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from eftflow.errors import ConfigError
from eftflow.inference.scan import run_scan
from eftflow.inference.scan.mpi import launcher_size, mpi_comm

LAUNCHER_VARS = (
    "PMI_SIZE",
    "OMPI_COMM_WORLD_SIZE",
    "PMIX_SIZE",
    "MPI_LOCALNRANKS",
    "SLURM_STEP_NUM_TASKS",
    "SLURM_STEP_ID",
    "SLURM_STEPID",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_NPROCS",
    "SLURM_JOB_ID",
    "SLURM_LOCALID",
)

# what srun -n 2 (without --mpi) sets in its second task, as seen on SLURM 23
SRUN_TASK = {
    "SLURM_JOB_ID": "873",
    "SLURM_NTASKS": "2",
    "SLURM_NPROCS": "2",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "1",
    "SLURM_STEPID": "0",
    "SLURM_STEP_ID": "0",
    "SLURM_STEP_NUM_TASKS": "2",
}
# the batch script of `sbatch -n 4`: the allocation's size, but no step
BATCH_SCRIPT = {
    "SLURM_JOB_ID": "874",
    "SLURM_NTASKS": "4",
    "SLURM_NPROCS": "4",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
}


@pytest.fixture
def launcher_env(monkeypatch):
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)

    def set_env(env: dict) -> None:
        for k, v in env.items():
            monkeypatch.setenv(k, v)

    return set_env


@pytest.fixture
def single_rank_mpi(monkeypatch):
    """An mpi4py whose COMM_WORLD has one rank (what MPI sees without a working launcher)."""
    comm = types.SimpleNamespace(Get_size=lambda: 1, Get_rank=lambda: 0)
    fake = types.ModuleType("mpi4py")
    fake.MPI = types.SimpleNamespace(COMM_WORLD=comm)
    monkeypatch.setitem(sys.modules, "mpi4py", fake)


def test_no_launcher_is_one_copy(launcher_env):
    assert launcher_size() == 1
    assert mpi_comm() is None


def test_serial_scan_in_a_batch_script_is_one_copy(launcher_env, single_rank_mpi):
    launcher_env(BATCH_SCRIPT)
    assert launcher_size() == 1
    assert mpi_comm() is None


def test_srun_single_task_is_one_copy(launcher_env):
    launcher_env({**SRUN_TASK, "SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"})
    assert launcher_size() == 1
    assert mpi_comm() is None


def test_srun_tasks_are_counted(launcher_env):
    launcher_env(SRUN_TASK)
    assert launcher_size() == 2


def test_mpi_variables_win_over_the_slurm_step(launcher_env):
    # mpiexec -n 4 inside `srun -n 1`: four MPI ranks in a one-task step
    launcher_env({**SRUN_TASK, "SLURM_STEP_NUM_TASKS": "1", "PMI_SIZE": "4"})
    assert launcher_size() == 4


def test_srun_without_mpi_is_refused_before_any_output(
    launcher_env, single_rank_mpi, tmp_path, make_scan
):
    launcher_env(SRUN_TASK)
    with pytest.raises(ConfigError, match=r"2 copies by srun.*refused.*--mpi=pmi2.*--no-mpi"):
        run_scan(make_scan("random", {"n_points": 20}), output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mpiexec_without_working_mpi_is_refused(launcher_env, single_rank_mpi):
    launcher_env({"PMI_SIZE": "3"})
    with pytest.raises(ConfigError, match="3 copies by an MPI launcher but MPI sees 1 rank"):
        mpi_comm()


def test_no_mpi_runs_alone_under_srun(launcher_env, single_rank_mpi, tmp_path, make_scan):
    launcher_env(SRUN_TASK)
    summary = run_scan(make_scan("random", {"n_points": 20}), output=tmp_path, use_mpi=False)
    assert summary.n_points == 20 and summary.info["mpi_ranks"] == 1


def _slurm_up() -> bool:
    if not (shutil.which("srun") and shutil.which("sinfo")):
        return False
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and b"up" in res.stdout


@pytest.mark.slurm
@pytest.mark.integration
def test_real_srun_without_mpi_plugin_is_refused(tmp_path):
    if not _slurm_up():
        pytest.skip("no running SLURM (srun/sinfo)")
    scan = tmp_path / "scan.yaml"
    scan.write_text(
        """\
seed: 3
models: {M: {parameters: {x: {prior: flat, range: [-1, 1]}}}}
components: {like: {function: loglike_expression, options: {expr: "-x**2"}}}
scanner: {name: random, options: {n_points: 50}}
"""
    )
    out = tmp_path / "out"
    exe = Path(sys.executable).parent / "eftflow"
    cmd = ["srun", "-n", "2", "--mpi=none", "--mem=1000", "-t", "5", "-l"]
    cmd += [str(exe), "scan", str(scan), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    text = res.stdout + res.stderr
    assert res.returncode != 0, text
    assert text.count("2 copies by srun") == 2, text  # both copies refuse
    assert not out.exists(), text
