"""Fisher-information figures (MadMiner's ``plot_fisher_information_contours_2d``,
``plot_fisherinfo_barplot``, ``plot_distribution_of_information``) and σ(θ) curves.

They read results (matrices, covariances, per-bin arrays) and compute nothing new beyond drawing
matrices from their covariance for the uncertainty bands.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eftflow.plotting import luminosity_text, save_figure, use_agg

__all__ = [
    "plot_fisher_information_contours_2d",
    "plot_fisherinfo_barplot",
    "plot_distribution_of_information",
    "plot_cross_sections",
    "EIGEN_FLOOR",
]


def _ellipse(info, center, contour_distance=1.0, n=200):
    """Points of {θ: (θ−c)ᵀ I (θ−c) = d²} for a 2×2 information matrix; None when I is not
    positive definite, an eigenvalue at or below :data:`EIGEN_FLOOR` times the largest counting
    as zero (a direction without information: its "ellipse" would be an open band whose length
    is rounding noise, and it would swamp every other contour of the figure)."""
    info = 0.5 * (np.asarray(info, float) + np.asarray(info, float).T)
    vals, vecs = np.linalg.eigh(info)
    if not np.all(np.isfinite(vals)) or vals[-1] <= 0 or vals[0] <= EIGEN_FLOOR * vals[-1]:
        return None
    phi = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(phi), np.sin(phi)])
    pts = vecs @ (circle * (contour_distance / np.sqrt(vals))[:, None])
    return pts + np.asarray(center, float)[:, None]


def plot_fisher_information_contours_2d(
    informations: Sequence,
    covariances: Sequence | None = None,
    labels: Sequence[str] | None = None,
    *,
    parameter_names: Sequence[str] = ("θ₁", "θ₂"),
    center=(0.0, 0.0),
    contour_distance: float = 1.0,
    n_samples: int = 100,
    seed: int = 0,
    luminosity: float | None = None,
    output=None,
):
    """Ellipses {Δθᵀ I Δθ = d²} (d = 1: the 68 % CL direction-wise error ellipse of I⁻¹), one per
    analysis, with an uncertainty band drawn from ``n_samples`` matrices sampled from each
    covariance; the title states d and, if given, the luminosity (pb⁻¹) of I. Returns the figure
    (and saves it if ``output`` is given)."""
    from matplotlib.ticker import MaxNLocator

    from eftflow.inference.fisher.manipulate import sample_information

    plt = use_agg()
    fig, ax = plt.subplots(figsize=(5, 5))
    rng = np.random.default_rng(seed)
    labels = (
        list(labels) if labels is not None else [f"analysis {i}" for i in range(len(informations))]
    )
    central = []
    for i, info in enumerate(informations):
        color = f"C{i}"
        cov = None if covariances is None else covariances[i]
        e = _ellipse(info, center, contour_distance)
        if e is None:  # named in the legend, so that a missing analysis is not mistaken for a
            ax.plot([], [], color=color, lw=1.5, ls=":",  # tiny one; no band around nothing
                    label=f"{labels[i]} (no closed contour: I is singular)")  # fmt: skip
            continue
        if cov is not None and n_samples > 0:
            for draw in sample_information(info, cov, n_samples, rng):
                d = _ellipse(draw, center, contour_distance)
                if d is not None:
                    ax.plot(d[0], d[1], color=color, alpha=min(0.5, 10.0 / n_samples), lw=0.5)
        ax.plot(e[0], e[1], color=color, lw=1.5, label=labels[i])
        central.append(e)
    if central:  # the view is set by the central contours, not by a stray near-singular draw
        c = np.asarray(center, float)[:2]
        half = 1.3 * np.max([np.abs(e - c[:, None]).max(axis=1) for e in central], axis=0)
        ax.set_xlim(c[0] - half[0], c[0] + half[0])
        ax.set_ylim(c[1] - half[1], c[1] + half[1])
    ax.set_xlabel(parameter_names[0])
    ax.set_ylabel(parameter_names[1])
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(5))
    ax.ticklabel_format(style="sci", scilimits=(-3, 3))
    lumi = "" if luminosity is None else f", L = {luminosity_text(luminosity)}"
    ax.set_title(
        f"Δθᵀ I Δθ = {contour_distance:g}² ({contour_distance:g}σ on each parameter{lumi})",
        fontsize="small",
    )
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    if output is not None:
        save_figure(fig, output)
        plt.close(fig)
    return fig


#: eigenvalues below this fraction of the largest one are numerically zero (not drawn)
EIGEN_FLOOR = 1e-10


def plot_fisherinfo_barplot(
    informations: Sequence, labels: Sequence[str], *, luminosity: float | None = None, output=None
):
    """Bars of the determinant (top) and eigenvalues (bottom, log scale) per analysis.

    Eigenvalues below :data:`EIGEN_FLOOR` times the largest (directions without information,
    such as all but one of a rate-only matrix) are not drawn, and the axis starts there; the
    title gives the luminosity (pb⁻¹), if known.
    """
    plt = use_agg()
    infos = [0.5 * (np.asarray(i) + np.asarray(i).T) for i in informations]
    eig = [np.sort(np.linalg.eigvalsh(i))[::-1] for i in infos]
    top = max((float(e[0]) for e in eig if len(e)), default=1.0)
    floor = EIGEN_FLOOR * top if top > 0 else 1e-300
    dets = [float(np.prod(np.where(e > floor, e, 0.0))) for e in eig]  # numerical zeros are 0
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(4, 1.2 * len(infos)), 6))
    x = np.arange(len(infos))
    a1.bar(x, dets, color=[f"C{i}" for i in x])
    a1.set_ylabel("det I")
    if luminosity is not None:
        a1.set_title(f"Fisher information at L = {luminosity_text(luminosity)}", fontsize="small")
    a1.set_xticks(x, labels, rotation=30, ha="right", fontsize="small")
    k = max(len(e) for e in eig)
    width = 0.8 / k
    for j in range(k):
        a2.bar(
            x + (j - (k - 1) / 2) * width,
            [e[j] if j < len(e) and e[j] > floor else 0.0 for e in eig],
            width,
            label=f"λ{j + 1}",
        )
    a2.set_yscale("log")
    a2.set_ylim(bottom=floor)
    a2.set_ylabel("eigenvalues of I")
    a2.set_xticks(x, labels, rotation=30, ha="right", fontsize="small")
    a2.legend(fontsize="small")
    fig.tight_layout()
    if output is not None:
        save_figure(fig, output)
        plt.close(fig)
    return fig


def plot_distribution_of_information(
    bin_boundaries, sigma_bins, full_bins, rate_bins=None, *, observable: str = "x", output=None
):
    """Cross section per bin and the determinant of the information in each bin (truth and rate);
    under- and overflow bins are drawn one bin width beyond the range."""
    plt = use_agg()
    b = np.asarray(bin_boundaries, float)
    width = b[1] - b[0] if b.size > 1 else 1.0
    edges = np.r_[b[0] - width, b, b[-1] + width]
    centers = 0.5 * (edges[1:] + edges[:-1])
    det_full = np.array([np.linalg.det(np.atleast_2d(m)) for m in full_bins])
    fig, a1 = plt.subplots(figsize=(6, 4))
    a1.step(centers, det_full, where="mid", color="C0", label="det I (truth)")
    if rate_bins is not None:
        det_rate = np.array([np.linalg.det(np.atleast_2d(m)) for m in rate_bins])
        a1.step(centers, det_rate, where="mid", color="C1", ls="--", label="det I (rate)")
    a1.set_xlabel(observable)
    a1.set_ylabel("determinant of the information per bin")
    a2 = a1.twinx()
    a2.bar(centers, sigma_bins, width=np.diff(edges), color="grey", alpha=0.25, label="σ per bin")
    a2.set_ylabel("σ [pb]")
    a1.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    if output is not None:
        save_figure(fig, output)
        plt.close(fig)
    return fig


def plot_cross_sections(
    thetas, xsec, xsec_error, *, parameter: int = 0, parameter_name: str = "θ", output=None
):
    """σ(θ) with its statistical error band along one parameter."""
    plt = use_agg()
    t = np.asarray(thetas, float)[:, parameter]
    order = np.argsort(t)
    xs, err = np.asarray(xsec)[order], np.asarray(xsec_error)[order]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(t[order], xs, color="C0")
    ax.fill_between(t[order], xs - err, xs + err, color="C0", alpha=0.3)
    ax.set_xlabel(parameter_name)
    ax.set_ylabel("σ [pb]")
    fig.tight_layout()
    if output is not None:
        save_figure(fig, output)
        plt.close(fig)
    return fig
