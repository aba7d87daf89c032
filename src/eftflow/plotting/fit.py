"""Figures of fits and limits: profiles, MINOS contours, limit bands and exclusion grids.

Headless (matplotlib's Agg backend, imported lazily). Each function returns the figure and, with
``path``, writes it atomically (temporary file in the same directory, then renamed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from eftflow.plotting import finish, save_figure, use_agg

__all__ = [
    "plot_profiles",
    "plot_contours",
    "plot_limit_bands",
    "plot_exclusion",
    "plot_likelihood_grid",
    "grid_coverage_note",
    "save_figure",
]


def _sci_ticks(ax, k: int) -> None:
    """θ of order 1e-4 on the θ axes (x, and y for 2-D grids): one common exponent instead of
    long tick labels that run into each other."""
    if k in (1, 2):
        ax.ticklabel_format(axis="x" if k == 1 else "both", style="sci", scilimits=(-3, 3))


def plot_profiles(profiles, *, levels: Sequence[float] = (1.0, 4.0), path=None, ax=None):
    """``F - F_min`` of :class:`~eftflow.inference.fit.ProfileResult` objects, with UP lines."""
    plt = use_agg()
    profiles = [profiles] if not isinstance(profiles, list | tuple) else list(profiles)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    for p in profiles:
        ax.plot(p.values, p.delta, marker=".", label=f"{p.name} ({p.kind})")
    for lv in levels:
        ax.axhline(lv, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(profiles[0].name if len({p.name for p in profiles}) == 1 else "parameter")
    ax.set_ylabel(r"$F - F_\mathrm{min}$")
    ax.legend(frameon=False)
    return finish(fig, path)


def plot_contours(contours, *, path=None, ax=None):
    """MINOS contours (:class:`~eftflow.inference.fit.ContourResult`), closed, with the optimum."""
    plt = use_agg()
    contours = [contours] if not isinstance(contours, list | tuple) else list(contours)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    for c in contours:
        ang = np.arctan2(c.y - c.center[1], c.x - c.center[0])
        order = np.argsort(ang)
        xs, ys = np.append(c.x[order], c.x[order][0]), np.append(c.y[order], c.y[order][0])
        ax.plot(xs, ys, label=f"UP = {c.up:.3g}")
    c0 = contours[0]
    ax.plot(*c0.center, marker="+", color="k", ms=10)
    ax.set_xlabel(c0.x_name)
    ax.set_ylabel(c0.y_name)
    ax.legend(frameon=False)
    return finish(fig, path)


def plot_limit_bands(limit, *, label: str = r"$\mu$", path=None, ax=None):
    """Observed upper limit against the expected median and +-1/2 sigma bands."""
    plt = use_agg()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 2.5))
    e = np.asarray(limit.expected)
    ax.fill_betweenx([0, 1], e[0], e[4], color="#ffdd44", label=r"expected $\pm 2\sigma$")
    ax.fill_betweenx([0, 1], e[1], e[3], color="#44bb44", label=r"expected $\pm 1\sigma$")
    ax.axvline(e[2], color="k", ls="--", label="expected median")
    if limit.observed is not None:
        ax.axvline(limit.observed, color="k", lw=2, label="observed")
    ax.set_yticks([])
    ax.set_xlabel(f"{100 * limit.cl:g}% CL upper limit on {label}")
    ax.legend(frameon=False, fontsize=8)
    return finish(fig, path)


def plot_exclusion(results: Mapping, *, names: Sequence[str] | None = None, path=None, ax=None):
    """Exclusion on a theta grid: p-value curves (1D) or CL contours (2D grids).

    ``results`` maps ``"observed"``/``"expected"`` to
    :class:`~eftflow.inference.limits.ExclusionResult`; expected bands are drawn when present.
    """
    plt = use_agg()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    first = next(iter(results.values()))
    k = first.theta.shape[1]
    names = list(names) if names else [rf"$\theta_{i}$" for i in range(k)]
    alpha = 1.0 - first.cl
    if k == 1:
        order = np.argsort(first.theta[:, 0])
        x = first.theta[order, 0]
        exp = results.get("expected")
        if exp is not None and exp.p_bands is not None:
            b = {n: v[order] for n, v in exp.p_bands.items()}
            ax.fill_between(x, b[2], b[-2], color="#ffdd44", label=r"expected $\pm 2\sigma$")
            ax.fill_between(x, b[1], b[-1], color="#44bb44", label=r"expected $\pm 1\sigma$")
        for key, style in (("expected", "--"), ("observed", "-")):
            if key in results:
                ax.plot(x, results[key].p_value[order], "k" + style, label=key)
        ax.axhline(alpha, color="r", lw=0.8, label=f"{100 * first.cl:g}% CL")
        ax.set_yscale("log")
        ax.set_xlabel(names[0])
        ax.set_ylabel("p-value")
    elif k == 2 and first.shape is not None:
        shape = first.shape
        xg = first.theta[:, 0].reshape(shape)
        yg = first.theta[:, 1].reshape(shape)
        exp = results.get("expected")
        if exp is not None and exp.p_bands is not None:
            for n, color in ((2, "#ffdd44"), (1, "#44bb44")):
                ax.contourf(
                    xg,
                    yg,
                    exp.p_bands[-n].reshape(shape),
                    levels=[alpha, 1.0],
                    colors=[color],
                    alpha=0.6,
                )
        for key, style in (("expected", "dashed"), ("observed", "solid")):
            if key in results:
                ax.contour(
                    xg,
                    yg,
                    results[key].p_value.reshape(shape),
                    levels=[alpha],
                    colors="k",
                    linestyles=style,
                )
                ax.plot([], [], "k" + ("--" if style == "dashed" else "-"), label=key)
        ax.plot(*first.best_theta, "k+", ms=10)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    else:
        ax.text(0.5, 0.5, f"{k}-dimensional grid: no plot", ha="center", transform=ax.transAxes)
    _sci_ticks(ax, k)
    ax.legend(frameon=False, fontsize=8)
    return finish(fig, path)


def grid_coverage_note(t: np.ndarray, levels: Sequence[float], cls: Sequence[float]) -> str:
    """A legend note when the CL regions of ``t`` (−2Δln L on a 1D or 2D grid) are not all
    inside the grid: ``""`` when they are.

    No level crossed anywhere: the grid lies inside every region, there is no contour or limit
    to draw. A level not reached everywhere on the grid's edge: that region (and every larger
    one) leaves the grid, its contour (or limit) is cut off there; the smallest such is named.
    """
    t = np.asarray(t, dtype=float)
    finite = t[np.isfinite(t)]
    if finite.size == 0:
        return " (no finite value on the grid)"
    j = int(np.argmin(levels))
    if finite.max() < levels[j]:
        return f" (below the {100 * cls[j]:g}% CL level on the whole grid)"
    edge = np.concatenate([t[0].ravel(), t[-1].ravel()])
    if t.ndim == 2:
        edge = np.concatenate([edge, t[:, 0], t[:, -1]])
    low = np.min(np.where(np.isfinite(edge), edge, np.inf))
    for j in np.argsort(levels):
        if low < levels[j]:
            return f" ({100 * cls[j]:g}% CL region extends beyond the grid)"
    return ""


def plot_likelihood_grid(
    axes: Sequence[Sequence[float]],
    curves: Mapping[str, np.ndarray],
    *,
    names: Sequence[str],
    cls: Sequence[float] = (0.68, 0.95),
    path=None,
    ax=None,
    note: str | None = None,
):
    """``-2 Delta ln L`` of several likelihoods on one theta grid, with the CL levels.

    ``axes`` are the grid axes (one or two); ``curves`` maps a label to ``t`` on the grid points
    (Cartesian product in ``ij`` order). 1D: curves and horizontal level lines; 2D: one contour per
    level (solid: the last level, dashed: the others) and colour per likelihood. ``note`` (e.g.
    the luminosity) goes into the title. A likelihood whose regions are not inside the grid says
    so in the legend (:func:`grid_coverage_note`): otherwise its entry would stand next to a
    contour that is missing or cut off.
    """
    from scipy.stats import chi2

    plt = use_agg()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    axes = [np.asarray(a, dtype=float) for a in axes]
    k = len(axes)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    levels = [float(chi2.ppf(c, k)) for c in cls]
    noted = False  # a legend entry carries a grid_coverage_note
    if k == 1:
        top = 2.0 * max(levels)
        for i, (label, t) in enumerate(curves.items()):
            t = np.asarray(t, dtype=float)
            note_i = grid_coverage_note(t, levels, cls)
            noted, label = noted or bool(note_i), label + note_i
            ax.plot(
                axes[0], np.where(np.isfinite(t), t, np.nan), color=colours[i % 10], label=label
            )
        for c, lv in zip(cls, levels):
            ax.axhline(lv, color="grey", lw=0.8, ls="--")
            ax.text(axes[0][0], lv, f" {100 * c:g}% CL", va="bottom", fontsize=7, color="grey")
        ax.set_ylim(0, top)
        ax.set_xlabel(names[0])
        ax.set_ylabel(r"$-2\,\Delta \ln L$")
        if note:
            ax.set_title(note, fontsize=8)
    elif k == 2:
        shape = (axes[0].size, axes[1].size)
        xg, yg = np.meshgrid(axes[0], axes[1], indexing="ij")
        order = np.argsort(levels)
        styles = ["dashed"] * (len(levels) - 1) + ["solid"]
        for i, (label, t) in enumerate(curves.items()):
            t = np.asarray(t, dtype=float).reshape(shape)
            note_i = grid_coverage_note(t, levels, cls)
            noted, label = noted or bool(note_i), label + note_i
            t = np.where(np.isfinite(t), t, 1e300)
            ax.contour(
                xg,
                yg,
                t,
                levels=[levels[j] for j in order],
                colors=[colours[i % 10]],
                linestyles=[styles[j] for j in range(len(order))],
            )
            ax.plot([], [], color=colours[i % 10], label=label)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        title = ", ".join(f"{100 * cls[j]:g}% CL {s}" for j, s in zip(order, styles))
        ax.set_title(title + (f"\n{note}" if note else ""), fontsize=8)
    else:
        ax.text(0.5, 0.5, f"{k}-dimensional grid: no plot", ha="center", transform=ax.transAxes)
    _sci_ticks(ax, k)
    if noted:  # long legend entries: below the axes
        ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    else:
        ax.legend(frameon=False, fontsize=8)
    return finish(fig, path)
