"""slurm-cluster job scripts, built without a scheduler or SLURM."""

from __future__ import annotations

import signal

from eftflow.cluster import resolve_cluster_settings
from eftflow.cluster.slurm_cluster import job_script, slurm_cluster_kwargs


def _settings(**slurm):
    return resolve_cluster_settings({"mode": "slurm-cluster", "slurm": slurm})


def test_job_script_carries_every_setting():
    script = job_script(
        _settings(
            cores=4,
            memory="16GB",
            walltime="02:00:00",
            lifetime_stagger="4m",
            queue="short",
            account="ehep",
            interface="ib0",
            local_directory="$TMPDIR",
            job_extra_directives=["--qos=normal", "--constraint=haswell"],
        )
    )
    lines = script.splitlines()
    for directive in (
        "#SBATCH -J eftflow-dask",
        "#SBATCH -p short",
        "#SBATCH -A ehep",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=15G",
        "#SBATCH -t 02:00:00",
        "#SBATCH --qos=normal",
        "#SBATCH --constraint=haswell",
    ):
        assert directive in lines, directive
    command = next(line for line in lines if "distributed.cli.dask_worker" in line)
    assert "--lifetime 6660s --lifetime-stagger 240s" in command  # 7200 - 300 - 240
    assert "--interface ib0" in command
    assert "--local-directory $TMPDIR" in command
    assert "--nthreads 4" in command


def test_optional_settings_are_left_out():
    script = job_script(_settings())
    assert "#SBATCH -p" not in script and "#SBATCH -A" not in script
    assert "--interface" not in script and "--local-directory" not in script
    assert "--lifetime 3000s --lifetime-stagger 300s" in script


def test_explicit_lifetime_and_processes():
    kw = slurm_cluster_kwargs(
        _settings(cores=8, processes=2, lifetime="45m", lifetime_stagger="5m")
    )
    assert kw["worker_extra_args"] == ["--lifetime", "2700s", "--lifetime-stagger", "300s"]
    script = job_script(_settings(cores=8, processes=2, lifetime="45m"))
    assert "--nworkers 2" in script and "--nthreads 4" in script


def test_importing_dask_jobqueue_through_eftflow_keeps_ctrl_c():
    before = signal.getsignal(signal.SIGINT)
    from eftflow.cluster.base import import_jobqueue

    import_jobqueue()
    job_script(_settings())
    assert signal.getsignal(signal.SIGINT) is before
