"""Figures show what their titles, axes and legends say: closure on constructed inputs.

Each test draws a figure from inputs with a known answer and inspects the matplotlib objects
(line data, labels, legend texts, tick labels), not just that a file was written.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eftflow.plotting import use_agg


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    use_agg().close("all")


def _legend_texts(ax_or_fig) -> list[str]:
    legends = getattr(ax_or_fig, "legends", None) or [ax_or_fig.get_legend()]
    return [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]


def _tick_labels(fig, ax, axis: str = "x") -> list[str]:
    fig.canvas.draw()
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks if t.get_text()]


def test_luminosity_text_gives_pb_and_fb():
    from eftflow.plotting import luminosity_text

    assert luminosity_text(100000.0) == "100000 pb⁻¹ (100 fb⁻¹)"
    assert luminosity_text(3e6) == "3e+06 pb⁻¹ (3 ab⁻¹)"


def test_fisher_contours_leave_out_a_singular_matrix_and_keep_the_others_visible():
    from eftflow.plotting.fisher import plot_fisher_information_contours_2d

    truth = np.array([[1.0e8, 4.0e7], [4.0e7, 4.0e7]])
    # rank one up to rounding (a rate-only matrix with the luminosity nuisance profiled)
    v = np.array([1.0, 0.44])
    rate = 3.1e4 * np.outer(v, v) / (v @ v) + 3e-10 * np.eye(2)
    fig = plot_fisher_information_contours_2d(
        [truth, rate],
        labels=["truth", "rate"],
        parameter_names=["W", "Y"],
        center=(0.0, 0.0),
        luminosity=1e5,
    )
    ax = fig.axes[0]
    drawn = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    assert len(drawn) == 1  # the singular one is not drawn as a huge "ellipse"
    x, y = drawn[0].get_xdata(), drawn[0].get_ydata()
    d2 = np.einsum("ni,ij,nj->n", np.c_[x, y], truth, np.c_[x, y])
    np.testing.assert_allclose(d2, 1.0, rtol=1e-9)  # Δθᵀ I Δθ = 1² as the title says
    # the 1σ projection on W is sqrt((I⁻¹)_WW); the view is set by the drawn contour
    assert np.max(np.abs(x)) == pytest.approx(np.sqrt(np.linalg.inv(truth)[0, 0]), rel=1e-3)
    assert ax.get_xlim()[1] < 10 * np.max(np.abs(x))
    assert ax.get_ylim()[1] < 10 * np.max(np.abs(y))
    legend = _legend_texts(ax)
    assert legend[0] == "truth" and legend[1].startswith("rate (no closed contour")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("W", "Y")
    assert "100 fb⁻¹" in ax.get_title() and "1σ" in ax.get_title()


def _history(train, validation):
    return {"summary": {"history": {"train": train, "validation": validation}}}


def test_evaluation_contours_name_the_parameters_and_the_luminosity(tmp_path, monkeypatch):
    import eftflow.plotting.fisher as pf
    from eftflow.plotting.ml import plot_evaluation

    figures, original = [], pf.plot_fisher_information_contours_2d

    def capture(*args, **kwargs):
        figures.append(original(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(pf, "plot_fisher_information_contours_2d", capture)
    entry = {"parameter_names": ["W", "Y"], "theta": [1e-4, 0.0], "luminosity": 3.0e5}
    result = {
        "theta": [1e-4, 0.0],
        "truth": {**entry, "information": [[4e8, 0.0], [0.0, 1e8]]},
        "detector": {**entry, "information": [[1e8, 0.0], [0.0, 2.5e7]]},
        "detector_plus_rate": {**entry, "information": [[1e8, 0.0], [0.0, 2.5e7]]},
    }
    ens = SimpleNamespace(specs=[_history([3.0, 2.0, 1.5], [3.5, 2.6, 2.2])])
    files = plot_evaluation(result, ens, tmp_path)
    assert [f.name for f in files] == ["loss_curves.png", "fisher_contours.png"]
    assert all(Path(f).stat().st_size > 0 for f in files)
    ax = figures[0].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("W", "Y")
    assert "300 fb⁻¹" in ax.get_title()
    assert _legend_texts(ax) == ["truth", "detector (ML) + rate"]
    line = ax.get_lines()[0]  # truth: centred at θ, half-width 1/sqrt(4e8) on W
    assert np.mean([line.get_xdata().min(), line.get_xdata().max()]) == pytest.approx(1e-4)
    assert np.ptp(line.get_xdata()) / 2 == pytest.approx(5e-5, rel=1e-3)


def test_likelihood_map_axes_carry_parameter_names_and_the_cl_line():
    from scipy.stats import chi2

    from eftflow.plotting.ml import _plot_map

    xs, ys = np.linspace(-1e-3, 1e-3, 7), np.linspace(-2e-3, 2e-3, 9)
    grid = np.array([[x, y] for x in xs for y in ys])  # ij order, as the maps are written
    t = (grid[:, 0] / 5e-4) ** 2 + (grid[:, 1] / 1e-3) ** 2
    fig = _plot_map({"theta": grid, "t": t, "shape": np.array([7, 9])}, None, names=["W", "Y"])
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("W", "Y")
    assert _legend_texts(ax) == ["95 % CL (2 d.o.f.)"]
    levels = [c.levels for c in ax.collections if hasattr(c, "levels") and len(c.levels) == 1]
    assert levels and levels[0][0] == pytest.approx(chi2.ppf(0.95, 2))


def test_loss_curves_train_solid_validation_dashed_and_empty_history():
    from eftflow.plotting.ml import plot_loss_curves

    fig = plot_loss_curves([_history([3.0, 2.0], [4.0, 3.0])["summary"]["history"]])
    ax = fig.axes[0]
    (train, val) = ax.get_lines()
    assert train.get_label() == "member 0 train" and train.get_linestyle() == "-"
    assert list(train.get_ydata()) == [3.0, 2.0]
    assert val.get_label() == "member 0 validation" and val.get_linestyle() == "--"
    assert list(val.get_ydata()) == [4.0, 3.0]
    empty = plot_loss_curves([{"train": [], "validation": []}])  # a member that ran no epoch
    assert empty.axes[0].get_yscale() == "linear"


@pytest.mark.parametrize(
    "train, validation, scale",
    [
        ([47.0, 44.0, 41.0], [52.0, 48.0, 45.0], "linear"),  # within a decade: linear
        ([100.0, 3.0, 0.5], [120.0, 4.0, 0.9], "log"),  # over two decades: log
        ([2.0, 0.5, -0.1], [2.0, 0.6, 0.1], "linear"),  # a negative loss: never log
        ([100.0, 20.0], [None, 0.5], "log"),  # the validation values count too
    ],
)
def test_loss_curves_use_a_log_axis_only_over_more_than_a_decade(train, validation, scale):
    from eftflow.plotting.ml import plot_loss_curves

    fig = plot_loss_curves([{"train": train, "validation": validation}])
    assert fig.axes[0].get_yscale() == scale


def test_one_parameter_limit_curves_have_readable_theta_ticks():
    from eftflow.plotting.fit import plot_likelihood_grid

    w = np.linspace(-1e-3, 1e-3, 41)
    fig = plot_likelihood_grid([w], {"fisher:truth": (w / 1e-4) ** 2}, names=["W"])
    ax = fig.axes[0]
    labels = _tick_labels(fig, ax)
    # a common exponent (1e-3) instead of labels like "−0.000750" that run into each other
    assert labels and max(len(s) for s in labels) <= 5, labels
    assert ax.xaxis.get_offset_text().get_text()
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), (w / 1e-4) ** 2)


def test_profile_lines_are_labelled_with_their_confidence_levels():
    from eftflow.plotting.model import plot_profile

    values = np.linspace(-2e-4, 2e-4, 5)
    fig = plot_profile("W", values, [2.0, 0.5, 0.0, 0.5, 2.0])
    ax = fig.axes[0]
    assert _legend_texts(ax) == ["profile", "68.27 % CL (1σ)", "95 % CL"]
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [4.0, 1.0, 0.0, 1.0, 4.0])  # −2Δln L
    assert lines[1].get_ydata()[0] == 1.0 and lines[2].get_ydata()[0] == pytest.approx(3.84)


def test_impacts_have_a_legend_for_up_down_prefit_postfit():
    from eftflow.plotting.model import plot_impacts

    rows = [
        {"name": "lumi", "prefit_up": 1e-3, "prefit_down": -1e-3,
         "postfit_up": 1.6e-4, "postfit_down": -1.6e-4},
        {"name": "gamma", "prefit_up": 3e-4, "prefit_down": 2e-4,
         "postfit_up": 6e-6, "postfit_down": -5e-6},
    ]  # fmt: skip
    fig = plot_impacts(rows, "W")
    assert _legend_texts(fig) == [
        "prefit, ν up",
        "prefit, ν down",
        "postfit, ν up",
        "postfit, ν down",
    ]
    ax = fig.axes[0]
    # ranked from the top: the first row is drawn highest
    assert [t.get_text() for t in ax.get_yticklabels()] == ["gamma", "lumi"]
    labels = _tick_labels(fig, ax)
    assert max(len(s) for s in labels) <= 5, labels


def _scan_output(tmp_path):
    from eftflow.inference.scan.analysis import ScanOutput

    rng = np.random.default_rng(1)
    a, b = rng.uniform(-1, 1, 400), rng.uniform(-1, 1, 400)
    ok = np.ones(400, bool)
    rows = {
        "Invalidation Code": (np.zeros(400, int), ok),
        "LogLike": (-0.5 * (a**2 + b**2) / 0.1, ok),
        "#M_parameters @M::primary_parameters::a": (a, ok),
        "#M_parameters @M::primary_parameters::b": (b, ok),
    }
    return ScanOutput(rows, {}, "random", tmp_path)


def test_scan_figures_are_written_atomically_and_label_their_contours(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from eftflow.plotting.scan import plot_scan

    out = _scan_output(tmp_path)
    paths = plot_scan(out, tmp_path / "plots")
    assert sorted(p.name for p in paths) == ["1d_M_a.png", "1d_M_b.png", "2d_M_a__M_b.png"]

    def broken(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError):
        plot_scan(out, tmp_path / "again")
    assert not [p for p in (tmp_path / "again").iterdir()]  # nothing half-written left

    from eftflow.plotting.scan import plot_2d

    plt = use_agg()
    fig, ax = plt.subplots()
    plot_2d(out, "a", "b", ax)
    assert _legend_texts(ax) == ["68.27 % CL (1σ, 2 d.o.f.)", "95.45 % CL (2σ, 2 d.o.f.)"]


@pytest.mark.parametrize("n_members", [2, 5, 30])
def test_variance_against_k_labels_the_ensemble_sizes(n_members):
    from eftflow.plotting.diagnostics import plot_variance_vs_k

    k = np.arange(1, n_members + 1)
    fig = plot_variance_vs_k({"k": k, "variance": 0.01 / k, "expected": 0.01 / k})
    ax = fig.axes[0]
    labels = _tick_labels(fig, ax)
    assert labels and all(s.isdigit() for s in labels), labels  # "1", "2", not "2×10⁰"
    assert labels[0] == "1" and labels[-1] == str(n_members)
    assert len(labels) <= 10
