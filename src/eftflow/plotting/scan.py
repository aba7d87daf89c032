"""Figures of global scans: 1-D/2-D profile likelihoods and marginal posteriors.

Reads a scan output directory (printer output) through
:mod:`eftflow.inference.scan.analysis`; computes nothing new.

Example
-------
>>> paths = plot_scan("results/scan/example")  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from eftflow.plotting import save_figure, use_agg

__all__ = ["plot_scan", "plot_profile_1d", "plot_marginal_1d", "plot_2d"]


def plot_profile_1d(out, name: str, ax, *, bins: int = 40) -> None:
    """Profile likelihood ratio ``exp(LogLike - max)`` against ``name``."""
    from eftflow.inference.scan.analysis import profile_1d

    x, prof = profile_1d(out, name, bins=bins)
    ax.plot(
        x, np.exp(prof - np.nanmax(prof)), drawstyle="steps-mid", color="C0", label="profile L/Lmax"
    )
    ax.set_xlabel(name)
    ax.set_ylim(0, 1.05)


def plot_marginal_1d(out, name: str, ax, *, bins: int = 40) -> None:
    """Marginal posterior (scaled to peak 1) against ``name``."""
    from eftflow.inference.scan.analysis import marginal_1d

    x, dens = marginal_1d(out, name, bins=bins)
    ax.plot(x, dens / dens.max(), drawstyle="steps-mid", color="C1", label="marginal posterior")


def plot_2d(out, x: str, y: str, ax, *, kind: str = "profile", bins: int = 30) -> None:
    """2-D profile likelihood (1σ, 2σ contours of -2ΔlnL) or marginal posterior density."""
    from eftflow.inference.scan.analysis import marginal_2d, profile_2d

    if kind == "profile":
        cx, cy, prof = profile_2d(out, x, y, bins=bins)
        z = np.exp(prof - np.nanmax(prof))
        ax.pcolormesh(cx, cy, np.nan_to_num(z).T, shading="nearest", cmap="Blues")
        d2 = -2 * (prof - np.nanmax(prof))
        if np.isfinite(d2).sum() > 4:
            ax.contour(
                cx, cy, np.nan_to_num(d2, nan=1e9).T, levels=[2.30, 6.18], colors=["k", "grey"]
            )
            ax.plot([], [], color="k", label="68.27 % CL (1σ, 2 d.o.f.)")
            ax.plot([], [], color="grey", label="95.45 % CL (2σ, 2 d.o.f.)")
            ax.legend(fontsize="x-small")
    else:
        cx, cy, dens = marginal_2d(out, x, y, bins=bins)
        ax.pcolormesh(cx, cy, dens.T, shading="nearest", cmap="Oranges")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{kind} likelihood" if kind == "profile" else "marginal posterior")


def plot_scan(
    source, outdir: str | Path | None = None, *, parameters: list[str] | None = None
) -> list[Path]:
    """Write one figure per parameter (1-D) and per pair (2-D) as PNG.

    Parameters
    ----------
    source
        A scan output directory or a loaded :class:`~eftflow.inference.scan.analysis.ScanOutput`.
    outdir
        Where to write (default ``<scan output>/plots``).
    parameters
        Which parameters (default: every sampled one, i.e. every non-constant column).
    """
    from eftflow.errors import InputError
    from eftflow.inference.scan.analysis import ScanOutput, load_scan

    out = source if isinstance(source, ScanOutput) else load_scan(source)
    plt = use_agg()
    outdir = Path(outdir) if outdir is not None else out.directory / "plots"
    outdir.mkdir(parents=True, exist_ok=True)
    if parameters is None:
        parameters = [q for q in out.parameters if np.ptp(out.values(q)[out.valid]) > 0]
    has_post = out.weights() is not None
    paths = []
    for name in parameters:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        plot_profile_1d(out, name, ax)
        if has_post:
            try:
                plot_marginal_1d(out, name, ax)
            except InputError:
                pass
        ax.legend(fontsize="small")
        path = outdir / f"1d_{name.replace('::', '_')}.png"
        fig.tight_layout()
        save_figure(fig, path, dpi=100)
        plt.close(fig)
        paths.append(path)
    for x, y in itertools.combinations(parameters, 2):
        kinds = ["profile", "posterior"] if has_post else ["profile"]
        fig, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 4), squeeze=False)
        for ax, kind in zip(axes[0], kinds):
            plot_2d(out, x, y, ax, kind=kind)
        path = outdir / f"2d_{x.replace('::', '_')}__{y.replace('::', '_')}.png"
        fig.tight_layout()
        save_figure(fig, path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
