"""Shared fixtures: paths, the embedded default config, a small setup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def default_config():
    from eftflow.config import load_config

    return load_config(None)


@pytest.fixture
def toy_setup():
    """A 2-parameter setup with quadratic morphing (6 components) over [-1, 1]²."""
    from eftflow.setup import EFTSetup

    s = EFTSetup()
    s.add_parameter("toy", 1, "theta_1", morphing_max_power=2, parameter_range=(-1.0, 1.0))
    s.add_parameter("toy", 2, "theta_2", morphing_max_power=2, parameter_range=(-1.0, 1.0))
    s.add_benchmark({"theta_1": 0.0, "theta_2": 0.0}, "sm")
    s.set_morphing(max_overall_power=2, seed=3)
    return s
