"""Figures of the statistical model: profiles, contours, nuisance pulls and impact rankings.

Headless (Agg, imported lazily); each function returns the figure and, with ``path``, writes it
atomically (:func:`eftflow.plotting.save_figure`). They only draw results computed elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eftflow.plotting import finish, use_agg

__all__ = [
    "plot_profile",
    "plot_contour",
    "plot_pulls",
    "plot_impacts",
    "plot_coverage",
    "plot_nuisance_shapes",
]


def plot_profile(name: str, values: Sequence[float], delta_nll: Sequence[float], *, path=None):
    """−2Δln L (twice the ``delta_nll`` of the scan, Δ of −ln L) along a profile scan, with the
    one-parameter 68.27 % (1σ, −2Δln L = 1) and 95 % (3.84) CL lines, labelled."""
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(values, 2 * np.asarray(delta_nll), "o-", color="C0", label="profile")
    for lev, text, ls in ((1.0, "68.27 % CL (1σ)", "--"), (3.84, "95 % CL", ":")):
        ax.axhline(lev, color="grey", ls=ls, lw=0.8, label=text)
    ax.set_xlabel(name)
    ax.set_ylabel(r"$-2\Delta\ln L$")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return finish(fig, path)


def plot_contour(
    x_name: str,
    y_name: str,
    x: Sequence[float],
    y: Sequence[float],
    center: Sequence[float],
    *,
    path=None,
):
    """A closed MINOS contour around the best fit."""
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(5, 4))
    xs, ys = np.r_[x, x[:1]], np.r_[y, y[:1]]
    ax.plot(xs, ys, "-", color="C0")
    ax.plot([center[0]], [center[1]], "k+", ms=10)
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    fig.tight_layout()
    return finish(fig, path)


def plot_pulls(pulls: Sequence[dict], *, path=None):
    """Post-fit pulls (points) and constraints (error bars) of the constrained parameters."""
    plt = use_agg()
    n = len(pulls)
    fig, ax = plt.subplots(figsize=(5, 0.35 * n + 1.2))
    y = np.arange(n)
    ax.axvspan(-2, 2, color="yellow", alpha=0.4)
    ax.axvspan(-1, 1, color="limegreen", alpha=0.4)
    ax.errorbar([p["pull"] for p in pulls], y, xerr=[p["constraint"] for p in pulls], fmt="ko")
    ax.set_yticks(y, [p["name"] for p in pulls])
    ax.set_xlim(-3, 3)
    ax.set_xlabel(r"$(\hat\nu - \nu_0)/\Delta\nu$")
    fig.tight_layout()
    return finish(fig, path)


def plot_impacts(impacts: Sequence[dict], poi: str, *, path=None, top: int = 20):
    """Ranked pre-fit (open) and post-fit (filled) impacts on ``poi``; a "≥" marks an impact
    stopped at the bound of ``poi`` (``at_bound`` of :meth:`ModelFitter.impacts`)."""
    plt = use_agg()
    rows = list(impacts)[:top][::-1]
    n = len(rows)
    height = 0.35 * n + 1.6
    fig, ax = plt.subplots(figsize=(6, height))
    y = np.arange(n)
    for key, kw in (
        ("prefit", {"fill": False, "edgecolor": "C0"}),
        ("postfit", {"color": "C0", "alpha": 0.7}),
    ):
        ax.barh(y, [r[f"{key}_up"] for r in rows], height=0.6, label=f"{key}, ν up", **kw)
        kw2 = dict(kw)
        if "edgecolor" in kw2:
            kw2["edgecolor"] = "C1"
        else:
            kw2["color"] = "C1"
        ax.barh(y, [r[f"{key}_down"] for r in rows], height=0.6, label=f"{key}, ν down", **kw2)
    for k, r in enumerate(rows):  # impacts stopped by the POI's bound are lower limits
        for key in r.get("at_bound") or ():
            ax.annotate("≥", (r[key], y[k]), ha="left" if r[key] >= 0 else "right",
                        va="center", fontsize=8, color="C3")  # fmt: skip
    if any(r.get("at_bound") for r in rows):
        ax.set_title(f"≥: stopped at the bound of {poi} (a lower limit)", fontsize=7)
    ax.set_yticks(y, [r["name"] for r in rows])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(rf"$\Delta\hat{{{poi}}}$" if len(poi) == 1 else f"Δ {poi}")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    fig.legend(fontsize=7, ncol=4, loc="lower center", frameon=False)
    fig.tight_layout(rect=(0, 0.3 / height, 1, 1))
    return finish(fig, path)


def plot_coverage(
    levels: Sequence[float],
    coverage: Sequence[float],
    errors: Sequence[float],
    *,
    path=None,
    label: str = "toys",
):
    """Measured coverage against the nominal confidence level."""
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.errorbar(levels, coverage, yerr=errors, fmt="o", label=label)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("nominal CL")
    ax.set_ylabel("coverage")
    ax.legend()
    fig.tight_layout()
    return finish(fig, path)


def plot_nuisance_shapes(panels, *, path=None):
    """Learned against true shape variations of nuisance parameters: one row per nuisance, one
    column per observable. ``panels``: (nuisance, side, observable, edges, (learned ratio, …),
    (true ratio, …)) as :func:`eftflow.inference.model.shapes.train_nuisance_shapes` computes
    them, the ratios those of the normalised varied histogram to the nominal one: the line is
    the varied weights, the points the nominal weights times the network's ĝ(x)."""
    plt = use_agg()
    names = list(dict.fromkeys(p[0] for p in panels))
    obs = list(dict.fromkeys(p[2] for p in panels))
    fig, axes = plt.subplots(
        len(names), len(obs), figsize=(3.2 * len(obs), 2.6 * len(names)), squeeze=False
    )
    colours = {"up": "tab:red", "down": "tab:blue"}
    for name, side, o, edges, learned, true in panels:
        ax = axes[names.index(name), obs.index(o)]
        edges = np.asarray(edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        nu = "+1" if side == "up" else "−1"
        ax.stairs(true[0], edges, baseline=None, color=colours[side], label=f"ν = {nu}: weights")
        ax.plot(centres, learned[0], "o", ms=3, color=colours[side], label=f"ν = {nu}: ĝ(x)")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_xlabel(o)
        if obs.index(o) == 0:
            ax.set_ylabel(f"{name}\nratio to ν = 0", fontsize=8)
    axes[0, 0].legend(fontsize=6, frameon=False)
    fig.suptitle("Shape variations: varied weights (lines) vs nominal × learned ratio (points)")
    fig.tight_layout()
    return finish(fig, path)
