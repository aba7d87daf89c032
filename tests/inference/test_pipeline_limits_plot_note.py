"""Limit figures state the luminosity of their likelihoods."""

from __future__ import annotations

import numpy as np

from eftflow.inference.pipeline_limits import _luminosity_note
from eftflow.plotting.fit import plot_likelihood_grid


def test_luminosity_note_one_value_or_each_named():
    same = {"fisher": {"luminosity": 1e5}, "histogram": {"luminosity": 1e5}}
    assert _luminosity_note(same) == "L = 100000 pb⁻¹ (100 fb⁻¹)"
    other = {"fisher": {"luminosity": 1e5}, "histogram": {"luminosity": 3e5}}
    assert _luminosity_note(other) == (
        "fisher: L = 100000 pb⁻¹ (100 fb⁻¹), histogram: L = 300000 pb⁻¹ (300 fb⁻¹)"
    )
    assert _luminosity_note({"grids": []}) is None


def test_grid_figures_carry_the_note():
    x = np.linspace(-1, 1, 21)
    fig = plot_likelihood_grid([x], {"a": 4 * x**2}, names=["W"], note="L = 1 pb⁻¹")
    assert fig.axes[0].get_title() == "L = 1 pb⁻¹"
    y = np.linspace(-1, 1, 11)
    t2 = (4 * x[:, None] ** 2 + y[None, :] ** 2).ravel()
    fig = plot_likelihood_grid([x, y], {"a": t2}, names=["W", "Y"], note="L = 2 pb⁻¹")
    assert fig.axes[0].get_title().endswith("\nL = 2 pb⁻¹") and "95% CL" in fig.axes[0].get_title()
