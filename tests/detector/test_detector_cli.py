"""CLI: particle store → simulate-detector → analyse-events, through `eftflow.cli.main`."""

from __future__ import annotations

import json

import numpy as np

from eftflow.cli import main
from eftflow.store.events import EventStore


def _setup(path):
    from eftflow.setup import EFTSetup

    s = EFTSetup()
    s.add_parameter("eft", 1, "W", morphing_max_power=1, parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm")
    s.add_benchmark({"W": 1e-3}, "bsm")
    s.set_morphing(max_overall_power=1, n_trials=2, n_test_thetas=5)
    s.save(path)
    return s


def test_cli_particles_to_events(make_dilepton, tmp_path, capsys):
    from eftflow.store.particles import ParticleStoreWriter

    ev, m = make_dilepton(3000, n_hadrons=10)
    parts = tmp_path / "particles.zarr"
    with ParticleStoreWriter(parts, ["sm", "bsm"], chunk_size=1000) as w:
        w.append(ev.particles, weights=np.asarray(ev.weights))
    setup = tmp_path / "setup.h5"
    _setup(setup)
    cfg = {
        "seed": 5,
        "detector": {
            "backend": "builtin",
            "chunk_size": 1000,
            "card_overrides": {"muon": {"efficiency": "0.9"}},
        },
    }
    objects = tmp_path / "objects.zarr"
    rc = main(
        [
            "simulate-detector",
            str(parts),
            "--setup",
            str(setup),
            "--config",
            json.dumps(cfg),
            "-o",
            str(objects),
            "--sampling-benchmark",
            "sm",
        ]
    )
    assert rc == 0
    analysis = {
        "seed": 5,
        "analysis": {
            "observables": [
                {"name": "m_ll", "definition": "(l[0] + l[1]).m", "required": True},
                {"name": "cos_theta", "definition": "cos_theta_cs(l[0], l[1])"},
            ],
            "cuts": ["60 < m_ll < 120"],
        },
    }
    out = tmp_path / "events.zarr"
    rc = main(
        [
            "analyse-events",
            str(objects),
            "--setup",
            str(setup),
            "--config",
            json.dumps(analysis),
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    store = EventStore(out)
    x = store.read("observables")
    # muon efficiency 0.9 per muon (isolation and acceptance take a little more): ~81 % of events keep two
    assert 0.7 < store.n_events / 3000 < 0.83
    assert abs(np.median(x[:, 0]) - 91.19) < 1.0
    assert np.all(np.abs(x[:, 1]) <= 1)
    assert np.all(store.read("sampling_benchmark") == 0)
    np.testing.assert_allclose(store.read("weights")[:, 1] / store.read("weights")[:, 0], 2.0)
    # reruns give the same events (seeded per job and chunk)
    main(
        [
            "simulate-detector",
            str(parts),
            "--setup",
            str(setup),
            "--config",
            json.dumps(cfg),
            "-o",
            str(tmp_path / "again.zarr"),
        ]
    )
    from eftflow.analysis.objects import ObjectStore

    a, b = (
        ObjectStore(objects).read()["objects"],
        ObjectStore(tmp_path / "again.zarr").read()["objects"],
    )
    np.testing.assert_array_equal(a["mu"].fields["pt"], b["mu"].fields["pt"])


def test_cli_bad_inputs(make_dilepton, tmp_path, capsys):
    setup = tmp_path / "setup.h5"
    _setup(setup)
    rc = main(
        [
            "simulate-detector",
            str(tmp_path / "missing.zarr"),
            "--setup",
            str(setup),
            "-o",
            str(tmp_path / "o.zarr"),
            "--config",
            '{"detector": {"backend": "builtin"}}',
        ]
    )
    assert rc == 2
    assert "input does not exist" in capsys.readouterr().err
    rc = main(
        [
            "analyse-events",
            str(tmp_path),
            "--setup",
            str(setup),
            "-o",
            str(tmp_path / "e.zarr"),
            "--config",
            '{"analysis": {"default_observables": true}}',
        ]
    )
    assert rc == 2
    assert "not an eftflow object store" in capsys.readouterr().err
    rc = main(
        [
            "simulate-detector",
            str(tmp_path),
            "--setup",
            str(setup),
            "-o",
            str(tmp_path / "o.zarr"),
            "--config",
            '{"detector": {"backend": "builtin", "card_overrides": {"muon": {"efficiency": "x"}}}}',
        ]
    )
    assert rc == 2
    assert "muon.efficiency: 'x' at column 1 is an unknown name" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists() and not (tmp_path / "e.zarr").exists()
