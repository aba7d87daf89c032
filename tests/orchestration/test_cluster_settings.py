"""The ``cluster`` config section: defaults, bad values, durations, sizing from the job's resources."""

from __future__ import annotations

import pytest

from eftflow.cluster import CLUSTER_SCHEMA, MODES, get_backend, resolve_cluster_settings, use_dask
from eftflow.cluster.local import local_cluster_kwargs
from eftflow.cluster.settings import parse_duration, worker_lifetime
from eftflow.cluster.slurm_runner import SLURMRunnerBackend, runner_worker_options
from eftflow.errors import BackendError, ConfigError


def test_defaults_fill_an_empty_section():
    s = resolve_cluster_settings(None)
    assert s["mode"] == "local"
    assert s["dashboard_address"] == ":8787"
    assert s["local"] == {"processes": True, "threads_per_worker": 1, "client_memory_mb": None}
    assert s["slurm"]["walltime"] == "01:00:00"
    assert s["slurm"]["adaptive"] == {"minimum": 1, "maximum": 8}
    assert s["slurm"]["job_extra_directives"] == []


def test_whole_config_is_accepted_and_not_modified():
    cfg = {"seed": 1, "cluster": {"mode": "slurm-cluster", "slurm": {"queue": "short"}}}
    s = resolve_cluster_settings(cfg)
    assert s["mode"] == "slurm-cluster" and s["slurm"]["queue"] == "short"
    assert cfg["cluster"] == {"mode": "slurm-cluster", "slurm": {"queue": "short"}}


@pytest.mark.parametrize(
    ("section", "field", "words"),
    [
        ({"mode": "pbs"}, "cluster.mode", "expected one of"),
        ({"slurm": {"cores": "four"}}, "cluster.slurm.cores", "expected integer"),
        ({"slurm": {"walltme": "01:00:00"}}, "cluster.slurm", "unknown key 'walltme'"),
        ({"slurm": {"walltime": "an hour"}}, "cluster.slurm.walltime", "does not match"),
        (
            {"slurm": {"lifetime": "58m", "lifetime_stagger": "5m"}},
            "cluster.slurm.lifetime",
            "before the walltime",
        ),
        (
            {"slurm": {"walltime": "00:01:00", "lifetime_stagger": "5m"}},
            "cluster.slurm.walltime",
            "too short",
        ),
        (
            {"slurm": {"adaptive": {"minimum": 5, "maximum": 2}}},
            "cluster.slurm.adaptive",
            "minimum 5 > maximum 2",
        ),
    ],
)
def test_bad_values_name_file_and_field(section, field, words):
    with pytest.raises(ConfigError) as info:
        resolve_cluster_settings(section, file="run.yaml")
    err = info.value
    assert err.file == "run.yaml"
    assert err.field == field
    assert words in err.message


def test_every_key_has_description_and_default():
    def walk(node, path):
        for name, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{path}.{name} has no description"
            assert "default" in sub, f"{path}.{name} has no default"
            walk(sub, f"{path}.{name}")

    walk(CLUSTER_SCHEMA, "cluster")
    assert set(CLUSTER_SCHEMA["properties"]["mode"]["enum"]) == set(MODES)


def test_fragment_matches_the_project_schema_once_merged():
    from eftflow.config import load_schema

    merged = load_schema()["properties"].get("cluster")
    if merged is None:
        pytest.skip(
            "the cluster fragment is not merged into workflow/schemas/config.schema.yaml yet"
        )
    assert merged == CLUSTER_SCHEMA


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("01:00:00", 3600),
        ("2-00:00:00", 172800),
        ("1-12:00", 129600),
        ("30", 1800),
        ("10:30", 630),
        ("55m", 3300),
        ("90s", 90),
        ("2h", 7200),
        ("1d", 86400),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_lifetime_defaults_to_walltime_minus_margin_and_stagger():
    s = resolve_cluster_settings({"slurm": {"walltime": "02:00:00", "lifetime_stagger": "2m"}})
    assert worker_lifetime(s["slurm"]) == ("6780s", "120s")  # 7200 - 300 - 120
    short = resolve_cluster_settings({"slurm": {"walltime": "00:20:00", "lifetime_stagger": "1m"}})
    assert worker_lifetime(short["slurm"]) == ("1020s", "60s")  # 1200 - 120 - 60
    explicit = resolve_cluster_settings({"slurm": {"lifetime": "50m"}})
    assert worker_lifetime(explicit["slurm"]) == ("3000s", "300s")


@pytest.mark.parametrize(
    ("threads", "memory_mb", "per_worker", "expected"),
    [
        (4, 8000, 1, (4, 1, 1_800_000_000)),  # 800 MB kept for the stage
        (4, 8000, 2, (2, 2, 3_600_000_000)),
        (1, 1000, 4, (1, 1, 744_000_000)),  # at least 256 MB kept
        (3, None, 1, (3, 1, "auto")),
        (0, 500, 1, (1, 1, 250_000_000)),  # at most half kept
    ],
)
def test_local_mode_is_sized_from_the_rule(threads, memory_mb, per_worker, expected):
    s = resolve_cluster_settings({"local": {"threads_per_worker": per_worker}})
    kw = local_cluster_kwargs(s, threads=threads, memory_mb=memory_mb)
    assert (kw["n_workers"], kw["threads_per_worker"], kw["memory_limit"]) == expected
    assert kw["processes"] is True


def test_local_mode_keeps_memory_for_the_stage_process():
    s = resolve_cluster_settings({"local": {"client_memory_mb": 1500}})
    assert local_cluster_kwargs(s, threads=2, memory_mb=8000)["memory_limit"] == 3_250_000_000
    big = local_cluster_kwargs(resolve_cluster_settings({}), threads=2, memory_mb=64000)
    assert big["memory_limit"] == (64000 - 2048) * 1_000_000 // 2
    # thread workers are measured by this process's memory: each is given all of it
    threads = resolve_cluster_settings({"local": {"processes": False}})
    kw = local_cluster_kwargs(threads, threads=4, memory_mb=8000)
    assert (kw["n_workers"], kw["memory_limit"]) == (4, 8_000_000_000)
    with pytest.raises(ConfigError, match="client_memory_mb"):
        resolve_cluster_settings({"local": {"client_memory_mb": -1}})


def test_runner_workers_are_sized_from_the_allocation():
    s = resolve_cluster_settings(
        {"mode": "slurm-runner", "slurm": {"local_directory": "$SCRATCHX/dask", "interface": "ib0"}}
    )
    env = {
        "SLURM_CPUS_PER_TASK": "2",
        "SLURM_MEM_PER_NODE": "12000",
        "SLURM_TASKS_PER_NODE": "3(x2),1",
    }
    opts = runner_worker_options(s, env)
    assert opts["nthreads"] == 2
    assert opts["memory_limit"] == 4_000_000_000
    assert opts["interface"] == "ib0"
    assert opts["local_directory"].endswith("/dask")
    assert runner_worker_options(s, {})["memory_limit"] == "auto"


def test_runner_outside_srun_is_a_clear_error(monkeypatch):
    for var in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(var, raising=False)
    backend = SLURMRunnerBackend(resolve_cluster_settings({"mode": "slurm-runner"}))
    with pytest.raises(BackendError, match=r"srun -n 8") as info:
        backend.start()
    assert info.value.field == "cluster.mode"
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    with pytest.raises(BackendError, match="at least 3 SLURM tasks"):
        backend.start()


def test_every_mode_has_a_backend():
    for mode in MODES:
        cls = get_backend(mode)
        assert cls.mode == mode
        for method in ("start", "expected_workers", "close", "describe"):
            assert callable(getattr(cls, method))
    with pytest.raises(ConfigError, match="unknown cluster mode"):
        get_backend("kubernetes")


def test_use_dask_only_when_it_helps():
    assert not use_dask(None, 1) and not use_dask({"cluster": {"mode": "local"}}, 0)
    assert use_dask({"mode": "local"}, 2)
    assert use_dask({"mode": "slurm-runner"}, 1) and use_dask({"mode": "slurm-cluster"}, 1)
    with pytest.raises(ConfigError, match="cluster.mode"):
        use_dask({"mode": "mpi"}, 4)
