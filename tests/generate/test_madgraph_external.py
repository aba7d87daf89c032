"""Opt-in: a real MG5_aMC (set MG5_HOME) on e+ e- > mu+ mu- with two benchmarks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from eftflow.generate.base import GenerationJob
from eftflow.generate.lhe import LHEReader
from eftflow.generate.madgraph import MadGraphGenerator
from eftflow.setup import EFTSetup

pytestmark = [
    pytest.mark.external,
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("MG5_HOME"), reason="needs a real MG5_aMC: set MG5_HOME"),
]


def test_real_madgraph_ee_mumu(tmp_path):
    setup = EFTSetup()
    # 1/alpha_EW at MZ (sminputs 1); the benchmarks are θ = 1/α, written to the card as is
    setup.add_parameter("sminputs", 1, "aewm1", morphing_max_power=2, parameter_range=(100, 140))
    setup.add_benchmark({"aewm1": 132.507}, "sm")
    setup.add_benchmark({"aewm1": 120.0}, "aewm1_120")
    job = GenerationJob(
        sample="sm",
        job_index=0,
        n_events=1000,
        seed=1234,
        output=tmp_path / "ee_mumu.lhe.gz",
        setup=setup,
        sampling_benchmark="sm",
        options={
            "mg_dir": os.environ["MG5_HOME"],
            "model": "sm",
            "process": "e+ e- > mu+ mu-",
            "cache_dir": str(tmp_path / "cache"),
            "run_card": {"ebeam1": 500.0, "ebeam2": 500.0, "lpp1": 0, "lpp2": 0},
            "timeout": 900,
        },
    )
    res = MadGraphGenerator().generate(job)
    reader = LHEReader(res.output, benchmarks=["sm", "aewm1_120"])
    assert reader.header.weight_ids[-2:] == ["sm", "aewm1_120"]
    w = reader.benchmark_weights(reader.read())
    assert w.shape == (1000, 2) and np.all(w > 0)
    # measured with MG 3.5.7 (shared notes): σ = 0.1040 pb, reweighted to 1/α = 120: 0.1227 pb
    assert res.cross_sections["sm"] == pytest.approx(0.104, rel=0.05)
    assert res.cross_sections["aewm1_120"] / res.cross_sections["sm"] == pytest.approx(
        0.1227 / 0.10397, rel=0.03
    )
    assert res.metadata["iseed"] == 1234
