"""``eftflow generate-events``, the backend registry and the invariants every backend obeys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.errors import ConfigError
from eftflow.generate.base import Generator
from eftflow.generate.registry import available_generators, get_generator
from eftflow.generate.seeds import job_seed
from eftflow.generate.toy import toy_cross_section, toy_setup
from eftflow.store.events import EventStore

SECTION = {
    "backend": "toy",
    "n_events_per_job": 3000,
    "n_jobs": 2,
    "samples": {"sm": {"sampling_benchmark": "sm"}},
    "toy": {"sigma0": 2.0},
}


def test_registry():
    assert set(available_generators()) >= {"toy", "madgraph", "builtin"}
    assert isinstance(get_generator("toy"), Generator)
    with pytest.raises(ConfigError, match="unknown generator backend 'nope'"):
        get_generator("nope")


def test_cli_toy(tmp_path):
    setup = toy_setup()
    setup.save(tmp_path / "setup.h5")
    out = tmp_path / "sm_1.zarr"
    rc = main(
        [
            "generate-events",
            "--setup",
            str(tmp_path / "setup.h5"),
            "--sample",
            "sm",
            "--job",
            "1",
            "--seed",
            "42",
            "--config",
            json.dumps(SECTION),
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    store = EventStore(out)
    assert store.n_events == 3000
    assert store.provenance["seed"] == job_seed(42, "sm", 1)
    assert len(store.provenance["config_hash"]) == 16  # the generation section and seed
    assert store.benchmark_names == list(setup.benchmarks)


def test_cli_bad_job_index(tmp_path, capsys):
    toy_setup().save(tmp_path / "setup.h5")
    rc = main(
        [
            "generate-events",
            "--setup",
            str(tmp_path / "setup.h5"),
            "--sample",
            "sm",
            "--job",
            "2",
            "--config",
            json.dumps(SECTION),
            "-o",
            str(tmp_path / "x.zarr"),
        ]
    )
    assert rc == 2 and "job index 2 outside 0..1" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"toy": {"bogus": 1}}, "generation.toy"),
        ({"n_event_per_job": 5}, "generation"),
        ({"n_events_per_job": 0}, "generation.n_events_per_job"),
    ],
)
def test_cli_inline_json_is_validated_like_a_config_file(tmp_path, capsys, change, field):
    toy_setup().save(tmp_path / "setup.h5")
    argv = ["generate-events", "--setup", str(tmp_path / "setup.h5"), "--sample", "sm"]
    rc = main([*argv, "--job", "0", "--config", json.dumps({**SECTION, **change}),
               "-o", str(tmp_path / "x.zarr")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and f"--config: {field}" in err
    assert not (tmp_path / "x.zarr").exists()


def test_cli_inline_json_without_seed_uses_the_default_global_seed(tmp_path):
    from eftflow.config import load_schema

    toy_setup().save(tmp_path / "setup.h5")
    out = tmp_path / "sm_0.zarr"
    argv = ["generate-events", "--setup", str(tmp_path / "setup.h5"), "--sample", "sm"]
    assert main([*argv, "--job", "0", "--config", json.dumps(SECTION), "-o", str(out)]) == 0
    default = load_schema()["properties"]["seed"]["default"]
    assert EventStore(out).provenance["seed"] == job_seed(default, "sm", 0)


# --- invariants over backends (builtin: added by its own tests; madgraph: with the fake MG5) ---------
BACKENDS = ["toy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_invariants(tmp_path, backend):
    """Σ weights ≈ σ per benchmark; one weight column per benchmark, in setup order."""
    from eftflow.cli.cmd_generate import make_job

    setup = toy_setup()
    section = dict(SECTION, backend=backend)
    job, name = make_job(section, setup, "sm", 0, tmp_path / "out.zarr", seed=1)
    res = get_generator(name).generate(job)
    store = EventStore(res.output)
    assert store.benchmark_names == [b.name for b in setup.physics_benchmarks()]
    sums = store.cross_sections()
    exact = toy_cross_section(setup.benchmark_array(), sigma0=2.0)
    errs = np.array([res.cross_section_errors[b] for b in store.benchmark_names])
    assert np.all(np.abs(sums - exact) < 4 * errs + 1e-10 * exact)


def test_cli_output_name_must_match_the_backend(tmp_path, capsys):
    toy_setup().save(tmp_path / "setup.h5")
    argv = ["generate-events", "--setup", str(tmp_path / "setup.h5"), "--sample", "sm", "--job"]
    rc = main([*argv, "0", "--config", json.dumps(SECTION), "-o", str(tmp_path / "x.lhe.gz")])
    assert rc == 2 and "toy backend writes an event store" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["setup.h5"]
