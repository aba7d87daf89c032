"""Observable distributions at several θ with nuisance bands and toys (MadMiner's ``plot_distributions``).

For each θ the event weights are morphed, w(θ) = Σ_b w_b(θ) · w_event,b (``setup.morpher``), and
histogrammed per observable, streaming over the event store chunk by chunk (memory stays flat).
Uncertainty band (``uncertainties="nuisance"``): ``n_toys`` nuisance vectors ν ~ N(0, 1) are
drawn once (seeded); each event's weight is multiplied by MadMiner's exponential nuisance factor
exp(Σ a_i ν_i + b_i ν_i²) built from the stored nuisance weights relative to the reference
benchmark; the band is the 16–84 % quantile range of the toy histograms per bin, and
``n_toy_lines`` of the toys are drawn as thin lines. Binning: the 0.5–99.5 % range of the first
chunk (or ``ranges``).

Example
-------
>>> # plot_distributions("events.zarr", setup, [[0, 0], [1e-3, 0]], "dist.png", observables=["m_ll"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.plotting import save_figure, use_agg

__all__ = ["plot_distributions", "histogram_distributions"]


def _nuisance_setup(store, setup):
    """(names, positive columns, negative columns or None, reference weight column) or None.

    The nuisance parameters whose benchmarks the store has weights for (others are left out, as
    the analysis leaves them out); the reference is the setup's
    :attr:`~eftflow.setup.EFTSetup.reference_benchmark`.
    """
    names = store.nuisance_benchmark_names or []
    params = list(getattr(setup, "nuisance_parameters", {}).values())
    used, pos, neg = [], [], []
    for p in params:
        if p.benchmark_positive not in names or (
            p.benchmark_negative is not None and p.benchmark_negative not in names
        ):
            continue
        used.append(p.name)
        pos.append(names.index(p.benchmark_positive))
        neg.append(None if p.benchmark_negative is None else names.index(p.benchmark_negative))
    if not used:
        return None
    return used, pos, neg, store.benchmark_names.index(setup.reference_benchmark)


def _benchmark_columns(store, setup) -> list[int]:
    """Store weight columns of the setup's physics benchmarks, in setup order."""
    phys = [b.name for b in setup.physics_benchmarks()]
    missing = [b for b in phys if b not in store.benchmark_names]
    if missing:
        raise InputError(
            f"the store has no weights for benchmark(s) {', '.join(missing)} of the setup "
            f"(it has {', '.join(store.benchmark_names)})",
            file=str(store.path),
            field="benchmark_names",
        )
    return [store.benchmark_names.index(b) for b in phys]


def histogram_distributions(
    store,
    setup,
    thetas,
    *,
    observables: Sequence[str] | None = None,
    n_bins: int = 40,
    ranges: dict | None = None,
    uncertainties: str = "nuisance",
    n_toys: int = 100,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict:
    """Histograms (and toy histograms) per observable and θ, streamed over the store.

    Returns ``{"edges": {obs: edges}, "hist": {obs: (n_theta, n_bins)}, "toys": {obs: (n_theta, n_toys, n_bins)}
    or None, "observables": [...]}``.
    """
    from eftflow.physics.nuisance import nuisance_coefficients, nuisance_factors
    from eftflow.store.events import EventStore

    if not isinstance(store, EventStore):
        store = EventStore(store)
    if store.n_events == 0:
        raise InputError("the store has no events to draw", file=str(store.path), field="n_events")
    names = list(observables or store.observable_names)
    unknown = [o for o in names if o not in store.observable_names]
    if unknown:
        raise InputError(
            f"unknown observable(s) {', '.join(unknown)}; the store has {', '.join(store.observable_names)}",
            file=str(store.path),
            field="observables",
        )
    if uncertainties not in ("nuisance", "none"):
        raise InputError(
            f"uncertainties must be 'nuisance' or 'none', got {uncertainties!r}",
            field="uncertainties",
        )
    cols = [store.observable_names.index(o) for o in names]
    bcols = _benchmark_columns(store, setup)
    thetas = np.atleast_2d(np.asarray(thetas, float))
    morph = setup.morpher.weights(thetas)  # (n_theta, n_benchmarks)
    nuis = _nuisance_setup(store, setup) if uncertainties == "nuisance" else None
    rng = np.random.default_rng(seed)
    nus = rng.standard_normal((n_toys, len(nuis[0]))) if nuis else None
    edges, hist, toys = {}, {}, {}
    offsets = (np.arange(n_toys) * n_bins)[:, None]
    for chunk in store.iter_chunks(chunk_size=chunk_size):
        x = chunk["observables"][:, cols]
        w = chunk["weights"][:, bcols] @ morph.T  # (n, n_theta)
        if not edges:
            for k, o in enumerate(names):
                lo, hi = (ranges or {}).get(o, np.nanpercentile(x[:, k], [0.5, 99.5]))
                if not hi > lo:
                    lo, hi = lo - 0.5, hi + 0.5
                edges[o] = np.linspace(lo, hi, n_bins + 1)
                hist[o] = np.zeros((len(thetas), n_bins))
                toys[o] = np.zeros((len(thetas), n_toys, n_bins)) if nuis else None
        factors = None
        if nuis:
            _, pos, neg, ref = nuis
            nw = chunk["nuisance_weights"]
            a, b = nuisance_coefficients(
                chunk["weights"][:, ref],
                [nw[:, i] for i in pos],
                [None if i is None else nw[:, i] for i in neg],
            )
            factors = np.stack([nuisance_factors(nu, a, b) for nu in nus])  # (n_toys, n)
        for k, o in enumerate(names):
            idx = np.clip(np.searchsorted(edges[o], x[:, k], side="right") - 1, 0, n_bins - 1)
            inside = (x[:, k] >= edges[o][0]) & (x[:, k] <= edges[o][-1])
            for t in range(len(thetas)):
                hist[o][t] += np.bincount(idx[inside], weights=w[inside, t], minlength=n_bins)
                if factors is not None:  # all toys in one bincount: toy s in bins s·n_bins + …
                    flat = np.bincount(
                        (idx[inside][None, :] + offsets).ravel(),
                        weights=(factors[:, inside] * w[inside, t]).ravel(),
                        minlength=n_toys * n_bins,
                    )
                    toys[o][t] += flat.reshape(n_toys, n_bins)
    return {
        "edges": edges,
        "hist": hist,
        "toys": toys if nuis else None,
        "observables": names,
        "nuisances": nuis[0] if nuis else [],
    }


def plot_distributions(
    store,
    setup,
    thetas,
    path,
    *,
    observables: Sequence[str] | None = None,
    line_labels: Sequence[str] | None = None,
    n_bins: int = 40,
    ranges: dict | None = None,
    uncertainties: str = "nuisance",
    n_toys: int = 100,
    n_toy_lines: int = 5,
    normalize: bool = False,
    log: bool = False,
    n_cols: int = 3,
    seed: int = 0,
) -> Path:
    """One panel per observable, one line per θ, nuisance bands and toy lines; written atomically.

    Parameters
    ----------
    store
        Event store (path or :class:`~eftflow.store.events.EventStore`).
    setup
        The :class:`~eftflow.setup.EFTSetup` (morphing and nuisance parameters).
    thetas
        Parameter points, shape (n_theta, n_parameters).
    path
        Output image (PNG, PDF, ...).
    uncertainties
        ``"nuisance"`` (band and toys from the nuisance weights, if the store has them) or ``"none"``.
    normalize
        Normalise each distribution to unit area (shape comparison).
    """
    plt = use_agg()
    h = histogram_distributions(
        store,
        setup,
        thetas,
        observables=observables,
        n_bins=n_bins,
        ranges=ranges,
        uncertainties=uncertainties,
        n_toys=n_toys,
        seed=seed,
    )
    names = h["observables"]
    thetas = np.atleast_2d(np.asarray(thetas, float))
    labels = list(
        line_labels or [f"θ = {np.array2string(t, precision=3, separator=', ')}" for t in thetas]
    )
    n_rows = (len(names) + n_cols - 1) // n_cols
    fig, axes = plt.subplots(
        n_rows,
        min(n_cols, len(names)),
        figsize=(4.2 * min(n_cols, len(names)), 3.4 * n_rows),
        squeeze=False,
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, o in enumerate(names):
        ax = axes[k // n_cols][k % n_cols]
        edges = h["edges"][o]
        for t in range(len(thetas)):
            y = h["hist"][o][t].copy()
            norm = y.sum() if normalize and y.sum() > 0 else 1.0
            c = colors[t % len(colors)]
            ax.stairs(y / norm, edges, color=c, label=labels[t] if k == 0 else None, lw=1.5)
            if h["toys"] is not None:
                toy = h["toys"][o][t] / norm
                lo, hi = np.quantile(toy, [0.16, 0.84], axis=0)
                ax.stairs(hi, edges, baseline=lo, fill=True, color=c, alpha=0.25)
                for s in range(min(n_toy_lines, toy.shape[0])):
                    ax.stairs(toy[s], edges, color=c, lw=0.5, alpha=0.5)
        ax.set_xlabel(o)
        ax.set_ylabel("normalised" if normalize else "σ per bin [pb]")
        if log:
            ax.set_yscale("log")
    for k in range(len(names), n_rows * axes.shape[1]):
        axes[k // axes.shape[1]][k % axes.shape[1]].set_visible(False)
    fig.legend(loc="upper center", ncol=min(len(labels), 4), fontsize=8)
    if h["toys"] is not None:
        fig.text(
            0.5, 0.005,
            f"bands: 16–84 % of {n_toys} toys over ν ~ N(0, 1) of {', '.join(h['nuisances'])}",
            ha="center", va="bottom", fontsize=7,
        )  # fmt: skip
    fig.tight_layout(rect=(0, 0.02, 1, 0.93))
    path = save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
