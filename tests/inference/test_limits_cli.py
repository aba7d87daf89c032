"""``eftflow compute-limits`` end to end, plots, and its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from eftflow.cli import main


def _histogram_spec():
    axes = [np.linspace(-1, 1, 5), np.linspace(-1, 1, 3)]
    theta = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=-1)
    base = np.array([50.0, 20.0, 5.0])
    sig = np.array([base * (1 + 0.3 * t[0] + 0.5 * t[0] ** 2 + 0.4 * t[1] ** 2) for t in theta])
    return {
        "kind": "histogram",
        "cl": 0.95,
        "nuisance_mode": "profile",
        "histogram": {
            "parameters": ["cW", "cY"],
            "theta": theta.tolist(),
            "signal": sig.tolist(),
            "background": [10.0, 5.0, 1.0],
            "observed": [62, 24, 7],
            "asimov_theta": [0.0, 0.0],
            "systematics": [{"name": "lumi", "signal": 0.02, "background": 0.02}],
        },
    }


def test_limits_cli_counting(tmp_path):
    spec = {
        "kind": "counting",
        "cl": 0.95,
        "counting": {
            "signal": 5.0,
            "background": 10.0,
            "observed": 12,
            "background_uncertainty": 0.1,
        },
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out, fig = tmp_path / "limits.json", tmp_path / "limits.png"
    assert main(["compute-limits", str(path), "-o", str(out), "--plot", str(fig)]) == 0
    res = json.loads(out.read_text())
    assert res["observed"] == pytest.approx(1.9165338, rel=1e-5)  # pyhf's value
    assert res["expected"]["+0sigma"] == pytest.approx(1.5565120, rel=1e-5)
    assert fig.stat().st_size > 1000


def test_limits_cli_histogram(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(_histogram_spec()))
    out, fig = tmp_path / "grid.json", tmp_path / "grid.png"
    assert main(["compute-limits", str(path), "-o", str(out), "--plot", str(fig)]) == 0
    res = json.loads(out.read_text())
    assert res["parameters"] == ["cW", "cY"]
    exp = res["expected"]
    assert exp["shape"] == [5, 3]
    i0 = exp["theta"].index([0.0, 0.0])
    assert exp["p_value"][i0] == pytest.approx(1.0)
    assert any(exp["excluded"]) and "p_bands" in exp
    assert len(res["observed"]["t"]) == 15
    assert fig.exists()


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s.update(kind="toys"), "kind"),
        (lambda s: s.update(colour="red"), "colour"),
        (lambda s: s["histogram"].update(signal=[[1.0, 2.0, 3.0]]), "histogram.signal"),
        (lambda s: s["histogram"].update(asimov_theta=[0.3, 0.0]), "histogram.asimov_theta"),
        (lambda s: s["histogram"].update(observed=[1, 2]), "histogram.observed"),
        (lambda s: s["histogram"]["systematics"][0].update(signal=-2.0), "histogram.systematics"),
        (lambda s: s.update(cl=2), "cl"),
    ],
)
def test_limits_cli_bad_inputs_name_file_and_field(tmp_path, capsys, mutate, field):
    spec = _histogram_spec()
    mutate(spec)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "out.json"
    assert main(["compute-limits", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert field in err
    assert str(path) in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]


def test_limits_cli_missing_file(tmp_path, capsys):
    assert (
        main(["compute-limits", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "o.json")]) == 2
    )
    assert "cannot read" in capsys.readouterr().err


def test_fit_plots_profiles_and_contours(tmp_path):
    from eftflow.inference.fit import Fit, Parameters
    from eftflow.plotting.fit import plot_contours, plot_profiles

    fit = Fit(lambda p: (p[0] - 1) ** 2 + 4 * (p[1] + p[0]) ** 2, Parameters({"a": 0, "b": 0}))
    fit.optimize()
    prof = fit.minos_profile("a", nvalues=7)
    cont = fit.minos_contour("a", "b", numpoints=10)
    plot_profiles([prof, fit.likelihood_profile("a", nvalues=7)], path=tmp_path / "p.png")
    plot_contours(cont, path=tmp_path / "c.pdf")
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert (tmp_path / "c.pdf").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pdf", "p.png"]
