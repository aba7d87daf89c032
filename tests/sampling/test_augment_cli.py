"""The CLI commands end to end on a small toy store, and their bad-input behaviour."""

import json

import numpy as np

from eftflow.cli import main
from eftflow.sampling.output import read_training_set

from .conftest import write_toy_store


def _setup(tmp_path, toy):
    toy.save(tmp_path / "setup.h5")
    return str(tmp_path / "setup.h5")


def test_augment_samples_and_fisher_cli(tmp_path, toy):
    setup = _setup(tmp_path, toy)
    store = str(write_toy_store(tmp_path / "ev.zarr", toy, 20_000, 4, chunk=5000))
    cfg = {
        "seed": 3,
        "augmentation": {
            "samples": [
                {"name": "local", "method": "local", "theta": "sm", "n_samples": 2000},
                {"name": "ratio", "method": "ratio", "n_samples": 2000, "theta1": "sm",
                 "theta0": {"type": "random", "n": 10, "priors": [["flat", -1, 1], ["flat", -1, 1]]}},
                {"name": "test", "method": "test", "theta": "t1_pos", "n_samples": 500},
            ]
        },
    }  # fmt: skip
    out = tmp_path / "aug"
    assert (
        main(
            [
                "augment-samples",
                store,
                "--setup",
                setup,
                "--config",
                json.dumps(cfg),
                "-o",
                str(out),
                "--threads",
                "2",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"local", "ratio", "test"} and summary["test"]["partition"] == "test"
    r = read_training_set(out / "ratio.zarr")
    assert r["r_xz"].shape == (2000, 1) and set(np.unique(r["y"])) == {0.0, 1.0}
    fcfg = {"fisher": {"luminosity": 10.0, "analyses": [
        {"name": "truth", "kind": "truth"}, {"name": "rate", "kind": "rate"},
        {"name": "hist", "kind": "histo", "observable": "x", "bins": 10}],
        "theta": [0.2, 0.1], "distribution": {"observable": "x", "bins": 8, "range": [-2, 2]}}}  # fmt: skip
    res = tmp_path / "fi.json"
    assert main(["compute-fisher-information", store, "--setup", setup, "--config", json.dumps(fcfg),
                 "-o", str(res), "--plot", str(tmp_path / "plots")]) == 0  # fmt: skip
    data = json.loads(res.read_text())
    assert set(data["analyses"]) == {"truth", "rate", "hist"}
    assert data["partition"] == "all" and data["luminosity"] == 10.0  # what the numbers are of
    assert np.asarray(data["analyses"]["truth"]["covariance"]).shape == (2, 2, 2, 2)
    assert {p.name for p in (tmp_path / "plots").glob("*.png")} == {
        "fisher_barplot.png", "fisher_contours.png", "information_distribution.png"}  # fmt: skip


def test_cli_bad_inputs_leave_nothing(tmp_path, toy, capsys):
    setup = _setup(tmp_path, toy)
    store = str(write_toy_store(tmp_path / "ev.zarr", toy, 2000, 4))
    cfg = {
        "augmentation": {
            "samples": [{"name": "a", "method": "local", "theta": "nope", "n_samples": 10}]
        }
    }
    out = tmp_path / "aug"
    assert (
        main(
            [
                "augment-samples",
                store,
                "--setup",
                setup,
                "--config",
                json.dumps(cfg),
                "-o",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "augmentation.samples[0].theta.name" in err and "unknown benchmark 'nope'" in err
    assert not out.exists() and not list(tmp_path.glob(".aug*"))
    cfg = {"augmentation": {"samples": [{"name": "a", "method": "magic", "n_samples": 10}]}}
    assert (
        main(
            [
                "augment-samples",
                store,
                "--setup",
                setup,
                "--config",
                json.dumps(cfg),
                "-o",
                str(out),
            ]
        )
        == 2
    )
    assert "augmentation.samples[0].method" in capsys.readouterr().err
    fcfg = {"fisher": {"theta": [0.0, 0.0, 0.0]}}
    res = tmp_path / "fi.json"
    assert (
        main(
            [
                "compute-fisher-information",
                store,
                "--setup",
                setup,
                "--config",
                json.dumps(fcfg),
                "-o",
                str(res),
            ]
        )
        == 2
    )
    assert "2 components" in capsys.readouterr().err and not res.exists()


def test_fisher_barplot_axis_starts_at_the_numerical_floor(tmp_path):
    """A rate-only matrix has one eigenvalue; the others are rounding noise (~1e-300 or < 0):
    the log axis starts 10⁻¹⁰ below the largest eigenvalue, not at 10⁻³⁰⁰, and det shows 0."""
    import numpy as np

    from eftflow.plotting.fisher import EIGEN_FLOOR, plot_fisherinfo_barplot

    v = np.array([1.0, 2.0])
    rate = 50.0 * np.outer(v, v) + np.array([[0.0, 1e-15], [1e-15, 0.0]])
    fig = plot_fisherinfo_barplot([np.diag([400.0, 800.0]), rate], ["truth", "rate"],
                                  luminosity=300.0, output=tmp_path / "bar.png")  # fmt: skip
    a1, a2 = fig.axes
    assert a2.get_ylim()[0] == EIGEN_FLOOR * 800.0
    assert [p.get_height() for p in a1.patches] == [400.0 * 800.0, 0.0]
    assert "300 pb⁻¹" in a1.get_title() and (tmp_path / "bar.png").stat().st_size > 0
