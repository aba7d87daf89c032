"""simulate-detector with bad config values: one line naming the key, nothing written; no banner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.detector.base import DetectorJob, ParticleSource, get_detector
from eftflow.errors import ConfigError


@pytest.fixture
def inputs(make_dilepton, tmp_path):
    from eftflow.setup import EFTSetup
    from eftflow.store.particles import ParticleStoreWriter

    ev, _ = make_dilepton(200, n_hadrons=5)
    parts = tmp_path / "particles.zarr"
    with ParticleStoreWriter(parts, ["sm", "bsm"], chunk_size=100) as w:
        w.append(ev.particles, weights=np.asarray(ev.weights))
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", morphing_max_power=1, parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3}, "bsm", verbose=False)
    s.save(tmp_path / "setup.h5")
    return parts, tmp_path / "setup.h5"


@pytest.mark.parametrize(
    "detector, field",
    [
        ({"chunk_size": 0}, "detector.chunk_size"),
        ({"chunk_size": -2}, "detector.chunk_size"),
        ({"chunk_size": "abc"}, "detector.chunk_size"),
        ({"card_overrides": {"muon": {"efficiency": "1.5"}}}, "detector.builtin.card_overrides.muon.efficiency"),
        ({"card_overrides": {"muon": {"efficiency": "-0.5"}}}, "detector.builtin.card_overrides.muon.efficiency"),
        ({"card_overrides": {"muon": {"efficiency": 1.5}}}, "detector.builtin.card_overrides.muon.efficiency"),
        ({"builtin": {"card_overrides": {"jet": {"algorithm": "x"}}}}, "detector.builtin.card_overrides.jet.algorithm"),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_naming_the_key(inputs, tmp_path, capsys, detector, field):
    parts, setup = inputs
    out = tmp_path / "objects.zarr"
    cfg = json.dumps({"detector": detector})
    rc = main(
        ["simulate-detector", str(parts), "--setup", str(setup), "--config", cfg, "-o", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and f"--config: {field}: " in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not out.exists() and not list(tmp_path.glob("objects*"))


def test_job_checks_its_counts(tmp_path):
    src = ParticleSource(["sm"], lambda n: iter(()))
    with pytest.raises(ConfigError, match="detector.chunk_size"):
        DetectorJob(src, tmp_path / "o.zarr", 1, chunk_size=0)
    with pytest.raises(ConfigError, match="threads"):
        DetectorJob(src, tmp_path / "o.zarr", 1, threads=0)
    with pytest.raises(ConfigError) as err:
        get_detector("parton", {"chunk_size": 2.5}, file="c.yaml")
    assert (err.value.file, err.value.field) == ("c.yaml", "detector.chunk_size")


def test_no_fastjet_banner_on_stdout(tmp_path):
    """FastJet prints its banner once per process, at the first clustering: run in a new one."""
    here = Path(__file__).parent
    code = (
        f"import numpy as np, sys; sys.path.insert(0, {str(here)!r})\n"
        "from conftest import dilepton_events\n"
        "from eftflow.detector.builtin import BuiltinDetector\n"
        "ev, _ = dilepton_events(20, jet=True)\n"
        "obj = BuiltinDetector().reconstruct(ev, np.random.default_rng(1))\n"
        "assert obj['j'].n_objects > 0\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "FastJet" not in res.stdout and res.stdout == ""
