"""Limit figures state the luminosity of their likelihoods."""

from __future__ import annotations

import numpy as np

from eftflow.inference.pipeline_limits import _luminosity_note
from eftflow.plotting.fit import grid_coverage_note, plot_likelihood_grid


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


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_legend_says_when_a_region_is_not_inside_the_grid():
    """A likelihood whose contour is missing (flat) or cut off (wide) says so in the legend."""
    x = np.linspace(-1, 1, 41)
    y = np.linspace(-1, 1, 31)
    r2 = x[:, None] ** 2 + y[None, :] ** 2
    curves = {
        "narrow": (100 * r2).ravel(),  # both contours well inside
        "wide": (4 * r2).ravel(),  # 68 % (2.30) inside, 95 % (5.99) crosses the edge (4 at x=±1)
        "flat": np.zeros(r2.size),  # no information
        "none": np.full(r2.size, np.nan),
    }
    fig = plot_likelihood_grid([x, y], curves, names=["W", "Y"])
    assert _legend(fig) == [
        "narrow",
        "wide (95% CL region extends beyond the grid)",
        "flat (below the 68% CL level on the whole grid)",
        "none (no finite value on the grid)",
    ]
    fig = plot_likelihood_grid([x], {"narrow": 100 * x**2, "wide": 3 * x**2}, names=["W"])
    assert _legend(fig) == ["narrow", "wide (95% CL region extends beyond the grid)"]
    # entries with notes are long: the legend goes below the axes, not over the curves
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent().y1 < ax.get_window_extent().y0
    fig = plot_likelihood_grid([x], {"narrow (a)": 100 * x**2}, names=["W"])
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent().y0 > ax.get_window_extent().y0  # inside


def test_grid_coverage_note_edges_and_levels():
    levels, cls = [2.3, 5.99], [0.68, 0.95]
    t = np.full((5, 5), 10.0)
    t[2, 2] = 0.0
    assert grid_coverage_note(t, levels, cls) == ""
    for edge in [(0, 3), (4, 1), (2, 0), (1, 4)]:  # each side of the grid
        u = t.copy()
        u[edge] = 5.0
        assert grid_coverage_note(u, levels, cls) == " (95% CL region extends beyond the grid)"
    u = t.copy()
    u[0, 0] = np.inf  # an infinite edge value is far outside, not inside
    assert grid_coverage_note(u, levels, cls) == ""
    assert "68% CL level" in grid_coverage_note(np.full((3, 3), 2.0), levels, cls)
    u = t.copy()
    u[0, 2] = 1.0  # the smaller region leaves the grid too: the note names it
    assert grid_coverage_note(u, levels, cls) == " (68% CL region extends beyond the grid)"
