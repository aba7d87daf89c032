"""Shared helpers for the scan tests."""

from __future__ import annotations

import copy

import pytest

GAUSS_2D = "-0.5*((x - 0.3)**2/0.1**2 + (y + 0.2)**2/0.2**2)"


def gaussian_scan(scanner: str = "random", options: dict | None = None, **extra) -> dict:
    """A 2-D Gaussian likelihood on flat priors [-1, 1]^2 (ln Z = ln(2π·0.1·0.2/4))."""
    spec = {
        "seed": 7,
        "models": {
            "M": {
                "parameters": {
                    "x": {"prior": "flat", "range": [-1, 1]},
                    "y": {"prior": "flat", "range": [-1, 1]},
                }
            }
        },
        "components": {"like": {"function": "loglike_expression", "options": {"expr": GAUSS_2D}}},
        "scanner": {"name": scanner, "options": options or {}},
    }
    spec.update(copy.deepcopy(extra))
    return spec


@pytest.fixture
def make_scan():
    return gaussian_scan
