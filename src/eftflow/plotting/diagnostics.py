"""Figures of the diagnostic gates of a learned likelihood ratio
(:mod:`eftflow.inference.model.diagnostics`): calibration curve, reweighting closure per
observable with a ratio panel, per-event ensemble spread, variance against ensemble size.

Headless (Agg, imported lazily); each function returns the figure and, with ``path``, writes it
atomically (:func:`eftflow.plotting.save_figure`). They only draw results computed elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from eftflow.plotting import finish, use_agg

__all__ = ["plot_calibration", "plot_reweighting", "plot_spread", "plot_variance_vs_k"]


def plot_calibration(cal: Mapping, *, path=None, label: str = ""):
    """Observed fraction of numerator events against the predicted s = r̂/(1+r̂), per bin."""
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="perfect calibration")
    ax.errorbar(
        cal["predicted"],
        cal["observed"],
        yerr=cal["error"],
        fmt="o",
        color="C0",
        label=f"{label} χ²/ndf = {cal['chi2']:.1f}/{cal['ndf']}".strip(),
    )
    lo = float(min(np.min(cal["predicted"]), np.min(cal["observed"])))
    hi = float(max(np.max(cal["predicted"]), np.max(cal["observed"])))
    pad = 0.05 * max(hi - lo, 1e-3)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(r"predicted $s = \hat r/(1+\hat r)$")
    ax.set_ylabel("observed fraction of θ0 events")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return finish(fig, path)


def plot_reweighting(name: str, obs: Mapping, *, path=None):
    """Reference, reweighted reference and target histograms of one observable, with the ratio
    reweighted/target in a lower panel."""
    plt = use_agg()
    fig, (ax, rx) = plt.subplots(
        2, 1, figsize=(5, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    e = np.asarray(obs["edges"], float)
    c = 0.5 * (e[1:] + e[:-1])
    wd = np.diff(e)
    ax.stairs(np.asarray(obs["reference"]) / wd, e, color="grey", ls=":", label="reference")
    ax.stairs(np.asarray(obs["target"]) / wd, e, color="k", label="target")
    ax.errorbar(
        c,
        np.asarray(obs["reweighted"]) / wd,
        yerr=np.asarray(obs["reweighted_err"]) / wd,
        fmt=".",
        color="C1",
        label=f"reweighted (χ²/ndf = {obs['chi2']:.1f}/{obs['ndf']})",
    )
    ax.set_ylabel("events / unit")
    ax.legend(fontsize=8)
    t = np.asarray(obs["target"], float)
    ok = t > 0
    ratio = np.where(ok, np.asarray(obs["reweighted"]) / np.where(ok, t, 1), np.nan)
    # same events in both samples: the error of their difference (the two errors are correlated)
    paired = obs.get("difference_err")
    both = paired if paired is not None else np.hypot(obs["reweighted_err"], obs["target_err"])
    err = np.where(ok, np.asarray(both, float) / np.where(ok, t, 1), np.nan)
    rx.axhline(1.0, color="grey", lw=0.8)
    rx.errorbar(c, ratio, yerr=err, fmt=".", color="C1")
    rx.set_ylabel("rew./target" + ("\n(paired err.)" if paired is not None else ""))
    rx.set_xlabel(name)
    fig.tight_layout()
    return finish(fig, path)


def plot_spread(std: Sequence[float], *, path=None, label: str = ""):
    """Histogram of the per-event standard deviation of the members' log r̂."""
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(5, 4))
    s = np.asarray(std, float)
    ax.hist(s, bins=40, color="C0", alpha=0.7, label=label or None)
    ax.axvline(float(np.median(s)), color="k", ls="--", lw=0.8, label="median")
    ax.set_xlabel(r"ensemble spread $\sigma_K(\log\hat r)$ per event")
    ax.set_ylabel("events")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return finish(fig, path)


def plot_variance_vs_k(vk: Mapping, *, path=None, label: str = ""):
    """Mean per-event variance of the ensemble mean against K, with the 1/K expectation."""
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(5, 4))
    k = np.asarray(vk["k"], float)
    ax.plot(k, vk["variance"], "o", color="C0", label=label or "bootstrap of the members")
    ax.plot(k, vk["expected"], "--", color="grey", label=r"$\propto 1/K$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # K is a small integer: label the sizes themselves, not powers of ten ("2×10⁰")
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    shown = k if len(k) <= 10 else np.unique(np.round(np.geomspace(k[0], k[-1], 8)))
    ax.xaxis.set_major_locator(FixedLocator(shown))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("ensemble size K")
    ax.set_ylabel(r"mean Var$[\overline{\log\hat r}_K]$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return finish(fig, path)
