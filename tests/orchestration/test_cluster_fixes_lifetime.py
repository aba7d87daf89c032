"""slurm-cluster worker lifetimes: the stagger never reaches the lifetime, short walltimes refused."""

from __future__ import annotations

import pytest

from eftflow.cluster import resolve_cluster_settings
from eftflow.cluster.settings import (
    MIN_WALLTIME,
    MIN_WORKER_SECONDS,
    parse_duration,
    slurm_time,
    worker_lifetime,
)
from eftflow.cluster.slurm_cluster import job_script, slurm_cluster_kwargs
from eftflow.errors import ConfigError


def _slurm(**slurm) -> dict:
    return resolve_cluster_settings({"mode": "slurm-cluster", "slurm": slurm})


def _seconds(pair: tuple[str, str]) -> tuple[int, int]:
    return parse_duration(pair[0]), parse_duration(pair[1])


@pytest.mark.parametrize(
    ("walltime", "expected"),
    [
        # the numbers of the report: ('240s', '300s') and ('24s', '300s') retired workers at once
        ("00:10:00", ("432s", "108s")),  # 600 - 60 margin = 540 = 432 + 108, 108 = 432 / 4
        ("00:06:00", ("260s", "64s")),  # 360 - 36 = 324 = 260 + 64
        ("01:00:00", ("3000s", "300s")),  # long enough: the default 5 minutes are kept
    ],
)
def test_default_stagger_is_cut_below_the_lifetime(walltime, expected):
    slurm = _slurm(walltime=walltime)["slurm"]
    assert worker_lifetime(slurm) == expected
    lifetime, stagger = _seconds(expected)
    assert stagger < lifetime
    assert lifetime - stagger >= MIN_WORKER_SECONDS  # no worker leaves right after starting
    assert lifetime + stagger < parse_duration(
        walltime
    )  # every worker leaves before SLURM kills it


@pytest.mark.parametrize(
    "walltime", ["00:01:52", "00:02:00", "00:03:00", "00:05:00", "00:30:00", "00:59:59", "2-00:00"]
)
@pytest.mark.parametrize("stagger", ["0s", "30s", "5m", "1h"])
def test_every_accepted_walltime_gives_workers_time_to_run(walltime, stagger):
    lifetime, spread = _seconds(
        worker_lifetime(_slurm(walltime=walltime, lifetime_stagger=stagger)["slurm"])
    )
    assert spread <= lifetime / 4
    assert spread <= parse_duration(stagger)  # never more than asked for
    assert lifetime - spread >= MIN_WORKER_SECONDS
    assert lifetime + spread < parse_duration(walltime)


@pytest.mark.parametrize("walltime", ["00:01:00", "00:00:30", "1"])
def test_walltime_too_short_for_a_worker_is_refused(walltime):
    with pytest.raises(ConfigError) as info:
        resolve_cluster_settings(
            {"mode": "slurm-cluster", "slurm": {"walltime": walltime}}, file="run.yaml"
        )
    err = info.value
    assert err.file == "run.yaml" and err.field == "cluster.slurm.walltime"
    assert "too short" in err.message and MIN_WALLTIME in err.message
    # the walltime the message proposes is accepted, even with a long stagger
    worker_lifetime(_slurm(walltime=MIN_WALLTIME, lifetime_stagger="1h")["slurm"])


def test_explicit_lifetime_keeps_its_value_and_cuts_the_stagger():
    slurm = _slurm(walltime="00:10:00", lifetime="3m")["slurm"]  # default stagger 5m > 3m
    assert worker_lifetime(slurm) == ("180s", "45s")
    assert worker_lifetime(_slurm(lifetime="45m", lifetime_stagger="5m")["slurm"]) == (
        "2700s",
        "300s",
    )


def test_explicit_lifetime_too_short_is_refused():
    with pytest.raises(ConfigError) as info:
        resolve_cluster_settings(
            {"mode": "slurm-cluster", "slurm": {"lifetime": "60s"}}, file="run.yaml"
        )
    assert info.value.field == "cluster.slurm.lifetime"
    assert "too short" in info.value.message


def test_job_script_has_the_fixed_lifetime_and_a_slurm_walltime():
    script = job_script(_slurm(walltime="00:10:00"))
    assert "--lifetime 432s --lifetime-stagger 108s" in script
    assert "#SBATCH -t 00:10:00" in script
    # the schema accepts '2h'; sbatch does not ("Invalid --time specification")
    kwargs = slurm_cluster_kwargs(_slurm(walltime="2h"))
    assert kwargs["walltime"] == "02:00:00"
    assert "#SBATCH -t 02:00:00" in job_script(_slurm(walltime="2h"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", "02:00:00"),
        ("90m", "01:30:00"),
        ("01:00:00", "01:00:00"),
        ("1-12:00", "1-12:00:00"),
        ("2-00:00:00", "2-00:00:00"),
        ("30", "00:30:00"),
    ],
)
def test_slurm_time(text, expected):
    assert slurm_time(text) == expected
    assert parse_duration(slurm_time(text)) == parse_duration(text)
