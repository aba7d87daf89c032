"""Estimator figures: loss curves (train/validation per member), predicted vs true log r / score,
and the evaluation summary (Fisher information next to the truth, likelihood-ratio map).

They read results (histories from the model specs, arrays of predictions) and compute nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eftflow.plotting import save_figure, use_agg

__all__ = ["plot_loss_curves", "plot_predicted_vs_true", "plot_evaluation"]


def plot_loss_curves(histories: Sequence[dict], labels: Sequence[str] | None = None, path=None):
    """Train (solid) and validation (dashed) loss per epoch, one colour per member."""
    plt = use_agg()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for k, h in enumerate(histories):
        colour = f"C{k % 10}"
        label = labels[k] if labels else f"member {k}"
        epochs = np.arange(1, len(h["train"]) + 1)
        ax.plot(epochs, h["train"], color=colour, label=f"{label} train")
        val = [np.nan if v is None else v for v in h.get("validation", [])]
        if val and np.isfinite(val).any():
            ax.plot(epochs[: len(val)], val, color=colour, ls="--", label=f"{label} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    # log scale only when the losses span more than a decade (ALICES/SALLY losses of order 40
    # that fall by 20 % read better on a linear axis than as 4.2×10¹ … 5.2×10¹)
    ys = np.concatenate([np.asarray(ln.get_ydata(), float) for ln in ax.get_lines()] or [[]])
    ys = ys[np.isfinite(ys)]
    wide = ys.size and ys.min() > 0 and ys.max() > 10 * ys.min()
    ax.set_yscale("log" if wide else "linear")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _finish(fig, path)


def plot_predicted_vs_true(
    true, predicted, *, labels: Sequence[str] | None = None, quantity: str = "log r", path=None
):
    """Scatter of predicted against true values, one panel per component, with the diagonal."""
    plt = use_agg()
    t = np.asarray(true, float)
    p = np.asarray(predicted, float)
    t, p = t.reshape(len(t), -1), p.reshape(len(p), -1)
    k = t.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 3.4), squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.scatter(t[:, j], p[:, j], s=2, alpha=0.3)
        lo, hi = np.nanpercentile(np.concatenate([t[:, j], p[:, j]]), [0.5, 99.5])
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        name = labels[j] if labels else (quantity if k == 1 else f"{quantity}[{j}]")
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"estimated {name}")
    fig.tight_layout()
    return _finish(fig, path)


def plot_evaluation(result: dict, ensemble, plot_dir) -> list[Path]:
    """The figures of ``eftflow evaluate-estimator``: loss curves, Fisher contours or the map."""
    out = Path(plot_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "loss_curves.png"]
    plot_loss_curves([s["summary"]["history"] for s in ensemble.specs], path=files[0])
    if "detector" in result:
        from eftflow.plotting.fisher import plot_fisher_information_contours_2d

        infos = [np.asarray(result[k]["information"]) for k in ("truth", "detector_plus_rate")]
        if infos[0].shape[0] == 2 and infos[1].shape[0] == 2:
            truth = result["truth"]
            fig = plot_fisher_information_contours_2d(
                infos,
                labels=["truth", "detector (ML) + rate"],
                parameter_names=truth.get("parameter_names") or ("θ₁", "θ₂"),
                center=truth.get("theta") or result.get("theta") or (0.0, 0.0),
                luminosity=truth.get("luminosity"),
            )
            files.append(out / "fisher_contours.png")
            _finish(getattr(fig, "figure", fig), files[-1])
    if "map" in result:
        from eftflow.ml.maps import load_map

        m = load_map(result["map"]["npz"])
        files.append(out / "likelihood_map.png")
        names = (result.get("truth") or {}).get("parameter_names") or result.get("parameters")
        _plot_map(m, files[-1], names=names)
    return files


def _plot_map(m: dict, path, names=None):
    """−2Δln L of a likelihood-ratio map: filled contours with the 95 % CL line (2-D regular
    grid, 2 degrees of freedom) or the curve along the first parameter."""
    from scipy.stats import chi2

    plt = use_agg()
    theta, t = np.asarray(m["theta"]), np.asarray(m["t"])
    shape = tuple(int(s) for s in np.asarray(m["shape"]).ravel())
    names = list(names or [])
    names += [rf"$\theta_{i}$" for i in range(len(names), theta.shape[1])]
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    if theta.shape[1] == 2 and shape and len(shape) == 2:
        xs, ys = np.unique(theta[:, 0]), np.unique(theta[:, 1])
        c = ax.contourf(xs, ys, t.reshape(shape).T, levels=20)
        ax.contour(xs, ys, t.reshape(shape).T, levels=[float(chi2.ppf(0.95, 2))], colors="w")
        ax.plot([], [], color="w", label="95 % CL (2 d.o.f.)")
        ax.legend(fontsize=7, facecolor="0.6")
        fig.colorbar(c, ax=ax, label=r"$-2\Delta\ln L$")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
    else:
        order = np.argsort(theta[:, 0])
        ax.plot(theta[order, 0], t[order])
        ax.set_xlabel(names[0])
        ax.set_ylabel(r"$-2\Delta\ln L$")
    ax.ticklabel_format(style="sci", scilimits=(-3, 3))
    fig.tight_layout()
    return _finish(fig, path)


def _finish(fig, path):
    if path is None:
        return fig
    p = save_figure(fig, path, dpi=110)
    use_agg().close(fig)
    return p
