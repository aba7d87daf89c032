"""Morphing-basis figures: how large the morphing weights get across the parameter space.

The quantity shown is Σ_b w_b(θ)², the factor by which morphing inflates the statistical variance
of a morphed histogram (MadMiner's ``plot_2d_morphing_basis``, ``plot_nd_morphing_basis_scatter``
and ``plot_nd_morphing_basis_slices``).
"""

from __future__ import annotations

import numpy as np

from eftflow.plotting import save_figure, use_agg

__all__ = [
    "plot_morphing_basis",
    "plot_2d_morphing_basis",
    "plot_nd_morphing_basis_scatter",
    "plot_nd_morphing_basis_slices",
]


def _squared_weights(morpher, theta):
    w = morpher.weights(theta)
    return np.sum(w * w, axis=1)


def _save(fig, path):
    save_figure(fig, path, dpi=120, bbox_inches="tight")


def plot_2d_morphing_basis(setup, path=None, *, resolution: int = 150, log: bool = True):
    """Colour map of Σ_b w_b(θ)² over the plane of the first two parameters, benchmarks marked."""
    plt = use_agg()
    from matplotlib.colors import LogNorm

    m = setup.morpher
    params = list(setup.parameters.values())
    (x0, x1), (y0, y1) = params[0].parameter_range, params[1].parameter_range
    pad_x, pad_y = 0.2 * (x1 - x0), 0.2 * (y1 - y0)
    xs = np.linspace(x0 - pad_x, x1 + pad_x, resolution)
    ys = np.linspace(y0 - pad_y, y1 + pad_y, resolution)
    xx, yy = np.meshgrid(xs, ys)
    theta = np.zeros((xx.size, len(params)))
    theta[:, 0], theta[:, 1] = xx.ravel(), yy.ravel()
    z = _squared_weights(m, theta).reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(6, 5))
    norm = LogNorm(vmin=max(z.min(), 1e-3), vmax=z.max()) if log else None
    mesh = ax.pcolormesh(xx, yy, z, norm=norm, cmap="viridis_r", shading="auto")
    fig.colorbar(mesh, ax=ax, label=r"$\sum_b w_b(\theta)^2$")
    basis = setup.benchmark_array()
    ax.scatter(
        basis[:, 0],
        basis[:, 1],
        c="red",
        marker="*",
        s=120,
        edgecolors="k",
        label="benchmarks",
        zorder=3,
    )
    for b, (bx, by) in zip(setup.physics_benchmarks(), basis[:, :2]):
        ax.annotate(b.name, (bx, by), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.add_patch(
        plt.Rectangle(
            (x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", color="k", label="parameter range"
        )
    )
    ax.set_xlabel(params[0].name)
    ax.set_ylabel(params[1].name)
    ax.set_title("Morphing basis: squared weight norm")
    ax.legend(loc="upper right", fontsize=8)
    if path is not None:
        _save(fig, path)
        plt.close(fig)
    return fig


def plot_nd_morphing_basis_scatter(setup, path=None, *, n_points: int = 5000, seed: int = 0):
    """Pairwise scatter of random θ in the ranges, coloured by Σ_b w_b²."""
    plt = use_agg()
    from matplotlib.colors import LogNorm

    params = list(setup.parameters.values())
    n_p = len(params)
    rng = np.random.default_rng(seed)
    lo = np.array([p.parameter_range[0] for p in params])
    hi = np.array([p.parameter_range[1] for p in params])
    theta = lo + (hi - lo) * rng.random((n_points, n_p))
    z = _squared_weights(setup.morpher, theta)
    basis = setup.benchmark_array()
    fig, axes = plt.subplots(
        n_p - 1, n_p - 1, figsize=(3 * (n_p - 1), 3 * (n_p - 1)), squeeze=False
    )
    norm = LogNorm(vmin=max(z.min(), 1e-3), vmax=z.max())
    sc = None
    for i in range(1, n_p):
        for j in range(n_p - 1):
            ax = axes[i - 1, j]
            if j >= i:
                ax.axis("off")
                continue
            sc = ax.scatter(theta[:, j], theta[:, i], c=z, s=3, norm=norm, cmap="viridis_r")
            ax.scatter(basis[:, j], basis[:, i], c="red", marker="*", s=60, edgecolors="k")
            ax.set_xlabel(params[j].name)
            ax.set_ylabel(params[i].name)
    if sc is not None:
        fig.colorbar(sc, ax=axes, label=r"$\sum_b w_b^2$")
    if path is not None:
        _save(fig, path)
        plt.close(fig)
    return fig


def plot_nd_morphing_basis_slices(setup, path=None, *, resolution: int = 60):
    """For each parameter pair, Σ_b w_b² on the plane through θ = 0 (others fixed at 0)."""
    plt = use_agg()
    from matplotlib.colors import LogNorm

    params = list(setup.parameters.values())
    n_p = len(params)
    fig, axes = plt.subplots(
        n_p - 1, n_p - 1, figsize=(3 * (n_p - 1), 3 * (n_p - 1)), squeeze=False
    )
    for i in range(1, n_p):
        for j in range(n_p - 1):
            ax = axes[i - 1, j]
            if j >= i:
                ax.axis("off")
                continue
            xs = np.linspace(*params[j].parameter_range, resolution)
            ys = np.linspace(*params[i].parameter_range, resolution)
            xx, yy = np.meshgrid(xs, ys)
            theta = np.zeros((xx.size, n_p))
            theta[:, j], theta[:, i] = xx.ravel(), yy.ravel()
            z = _squared_weights(setup.morpher, theta).reshape(xx.shape)
            ax.pcolormesh(
                xx, yy, z, norm=LogNorm(vmin=max(z.min(), 1e-3), vmax=z.max()), cmap="viridis_r"
            )
            ax.set_xlabel(params[j].name)
            ax.set_ylabel(params[i].name)
    if path is not None:
        _save(fig, path)
        plt.close(fig)
    return fig


def plot_morphing_basis(setup, path):
    """The natural basis plot for the number of parameters (1: curve, 2: map, more: slices)."""
    n_p = len(setup.parameters)
    if n_p == 2:
        return plot_2d_morphing_basis(setup, path)
    if n_p > 2:
        return plot_nd_morphing_basis_slices(setup, path)
    plt = use_agg()
    p = next(iter(setup.parameters.values()))
    lo, hi = p.parameter_range
    xs = np.linspace(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo), 400)
    z = _squared_weights(setup.morpher, xs[:, None])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(xs, z)
    ax.plot(setup.benchmark_array()[:, 0], np.ones(len(setup.physics_benchmarks())), "r*", ms=12)
    ax.set_xlabel(p.name)
    ax.set_ylabel(r"$\sum_b w_b^2$")
    _save(fig, path)
    plt.close(fig)
    return fig
