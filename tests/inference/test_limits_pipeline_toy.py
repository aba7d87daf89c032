"""``eftflow compute-limits --store/--setup/--fisher``: limits from the pipeline's likelihoods.

A small toy store (analytic weights, eftflow.generate.toy) gives a histogram likelihood whose
small-θ curvature is the histogram Fisher information with the same binning.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import chi2

from eftflow.cli import main

BINS = [-1.5, -0.5, 0.0, 0.5, 1.5]
LUMI = 100.0


def _write_store(path, setup, n, seed, sigma0=10.0):
    from eftflow.generate.toy import sample_toy, toy_cross_section, toy_dsigma
    from eftflow.store.events import EventStoreWriter

    rng = np.random.default_rng(seed)
    names = [b.name for b in setup.physics_benchmarks()]
    bv = setup.benchmark_array()
    x = sample_toy(n, bv[0], rng)
    p_sm = toy_dsigma(x, bv[0]) / toy_cross_section(bv[0])
    w = np.stack([toy_dsigma(x, t, sigma0=sigma0) for t in bv], axis=1) / p_sm[:, None] / n
    n_tr, n_va = int(0.6 * n), int(0.2 * n)
    attrs = {
        "partitions": {
            "train": [0, n_tr],
            "validation": [n_tr, n_tr + n_va],
            "test": [n_tr + n_va, n],
        },
        "signal_events": [n] + [0] * (len(names) - 1),
    }
    with EventStoreWriter(path, ["x", "x2"], names, chunk_size=10_000, attrs=attrs) as wr:
        wr.append(
            observables=np.stack([x, x * x], axis=1),
            weights=w,
            sampling_benchmark=np.zeros(n, np.int64),
        )


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """setup.h5 (toy, 5 % lumi norm systematic), a 40k-event store, a Fisher JSON (histo, test)."""
    from eftflow.generate.toy import toy_setup
    from eftflow.inference.fisher import FisherInformation

    d = tmp_path_factory.mktemp("toy_limits")
    setup = toy_setup(parameter_range=(-0.2, 0.2))
    setup.add_systematics("norm", "lumi", norm_variation=1.05)
    setup.save(d / "setup.h5")
    _write_store(d / "events.zarr", setup, 40_000, 11)
    fi = FisherInformation(d / "events.zarr", d / "setup.h5", partition="test")
    info = fi.histo_information([0.0, 0.0], LUMI, "x", BINS)
    fisher = {"theta": [0.0, 0.0], "luminosity": LUMI, "analyses": {"histo": info.to_dict()}}
    (d / "fisher.json").write_text(json.dumps(fisher))
    return d, np.asarray(info.information)


def _cli(d, out, limits, *extra):
    args = ["limits", "--setup", str(d / "setup.h5"), "--store", str(d / "events.zarr")]
    args += ["--fisher", str(d / "fisher.json"), "-o", str(out)]
    return main([*args, "--config", json.dumps({"limits": limits}), *extra])


def _limits(**hist):
    return {
        "n_points": 21,
        "histogram": {"observable": "x", "bins": BINS, "systematics": False, **hist},
    }


def test_fisher_and_histogram_limits_match_the_analytic_ellipse(toy, tmp_path):
    d, info = toy
    out, plots = tmp_path / "limits.json", tmp_path / "plots"
    assert _cli(d, out, _limits(), "--plot-dir", str(plots)) == 0
    res = json.loads(out.read_text())
    assert res["parameters"] == ["theta_1", "theta_2"]
    assert [g["name"] for g in res["grids"]] == ["theta_1", "theta_2", "theta_1_theta_2"]
    for j, g in enumerate(res["grids"][:2]):
        for key, lik in g["likelihoods"].items():
            for cl, level in lik["levels"].items():
                assert level == pytest.approx(chi2.ppf(float(cl), 1))
                half = math.sqrt(level / info[j, j])  # analytic Fisher interval
                ((lo, hi),) = lik["intervals"][cl]
                tol = 1e-9 if key == "fisher:histo" else 0.02  # histogram ≈ Fisher at small θ
                assert lo == pytest.approx(-half, rel=tol) and hi == pytest.approx(half, rel=tol)
                assert lik["intervals_open"][cl] == [[False, False]]  # both ends are limits
    g2 = res["grids"][2]
    f = g2["likelihoods"]["fisher:histo"]
    assert f["levels"]["0.95"] == pytest.approx(5.991, abs=1e-3)
    pts = np.asarray(g2["points"])
    np.testing.assert_allclose(f["minus2_delta_lnL"], np.einsum("ni,ij,nj->n", pts, info, pts))
    np.testing.assert_allclose(f["p_value"], chi2.sf(f["minus2_delta_lnL"], 2))
    h = np.asarray(g2["likelihoods"]["histogram"]["minus2_delta_lnL"])
    inside = np.asarray(f["minus2_delta_lnL"]) < 3 * 5.991  # small θ: the quadratic regime
    np.testing.assert_allclose(
        h[inside], np.asarray(f["minus2_delta_lnL"])[inside], rtol=0.05, atol=0.05
    )
    assert g2["likelihoods"]["histogram"]["best_fit"] == [0.0, 0.0]
    assert sorted(p.name for p in plots.iterdir() if not p.name.startswith(".")) == [
        "limits_theta_1.png",
        "limits_theta_1_theta_2.png",
        "limits_theta_2.png",
    ]


@pytest.mark.parametrize("mode", ["profile", "marginalise"])
def test_norm_nuisance_widens_the_contour(toy, tmp_path, mode):
    d, _ = toy
    # away from the SM the rate carries information, which the 5 % norm nuisance removes
    grids = [{"parameters": ["theta_1"], "ranges": [[0.1, 0.5]], "n_points": 41}]
    widths = {}
    for syst in (False, True):
        cfg = {
            **_limits(systematics=syst, nuisance_mode=mode),
            "theta_ref": [0.3, 0.0],
            "grids": grids,
        }
        cfg["fisher"] = {"enabled": False}
        out = tmp_path / f"{syst}.json"
        assert _cli(d, out, cfg) == 0
        lik = json.loads(out.read_text())["grids"][0]["likelihoods"]
        assert list(lik) == ["histogram"] and lik["histogram"]["nuisance_mode"] == mode
        ((lo, hi),) = lik["histogram"]["intervals"]["0.95"]
        assert lo < 0.3 < hi
        widths[syst] = hi - lo
    assert widths[True] > 1.02 * widths[False]


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (_limits(observable="m_ll"), "limits.histogram.observable"),
        (_limits(bins=[0.0, 1.0, 0.5]), "limits.histogram.bins"),
        (
            {**_limits(), "grids": [{"parameters": ["theta_1", "theta_2"], "ranges": [[-1, 1]]}]},
            "limits.grids[0].ranges",
        ),
        ({**_limits(), "grids": [{"parameters": ["theta_3"]}]}, "limits.grids[0].parameters"),
        ({**_limits(), "theta_ref": [0.0, 0.0, 0.0]}, "limits.theta_ref"),
        ({**_limits(), "fisher": {"analyses": ["truth"]}}, "limits.fisher.analyses"),
        ({**_limits(), "colour": "red"}, "limits"),
    ],
)
def test_bad_inputs_are_clear_errors_and_write_nothing(toy, tmp_path, limits, field, capsys):
    d, _ = toy
    out, plots = tmp_path / "limits.json", tmp_path / "plots"
    assert _cli(d, out, limits, "--plot-dir", str(plots)) == 2
    err = capsys.readouterr().err
    assert field in err, err
    assert list(tmp_path.iterdir()) == []


def test_spec_and_pipeline_inputs_are_exclusive(toy, tmp_path, capsys):
    d, _ = toy
    spec = tmp_path / "spec.json"
    spec.write_text("{}")
    assert (
        main(["limits", str(spec), "--setup", str(d / "setup.h5"), "-o", str(tmp_path / "o.json")])
        == 2
    )
    assert "not both" in capsys.readouterr().err


def test_intervals_reaching_the_grid_edge_are_marked_open_and_warned(toy, tmp_path, capfd):
    """A grid narrower than the interval: the ends are the grid's, flagged and logged."""
    d, info = toy
    half = math.sqrt(chi2.ppf(0.95, 1) / info[0, 0])
    cfg = {
        **_limits(),
        "grids": [{"parameters": ["theta_1"], "ranges": [[-half / 2, 2 * half]], "n_points": 21}],
        "histogram": {"enabled": False},
    }
    out = tmp_path / "limits.json"
    assert _cli(d, out, cfg) == 0
    lik = json.loads(out.read_text())["grids"][0]["likelihoods"]["fisher:histo"]
    ((lo, hi),) = lik["intervals"]["0.95"]
    assert lo == pytest.approx(-half / 2) and hi == pytest.approx(half, rel=1e-9)
    assert lik["intervals_open"]["0.95"] == [[True, False]]  # only the lower end is the grid's
    text = capfd.readouterr().err
    assert "fisher:histo: theta_1 at CL 0.95" in text and "widen the grid" in text


def test_intervals_1d_open_ends_on_known_curves():
    from eftflow.inference.pipeline_limits import intervals_1d

    x = np.linspace(-2.0, 2.0, 41)
    assert intervals_1d(x, x**2, 1.0, open_ends=True) == ([[-1.0, 1.0]], [[False, False]])
    ivs, edges = intervals_1d(x, (x - 2.0) ** 2, 1.0, open_ends=True)  # minimum at the edge
    assert ivs == [[pytest.approx(1.0), 2.0]] and edges == [[False, True]]
    ivs, edges = intervals_1d(x, (x**2 - 1.0) ** 2 * 4, 1.0, open_ends=True)  # two dips
    assert len(ivs) == 2 and edges == [[False, False], [False, False]]
    assert intervals_1d(x, np.zeros_like(x), 1.0, open_ends=True) == ([[-2.0, 2.0]], [[True, True]])
    assert intervals_1d(x, x**2, 1.0) == [[-1.0, 1.0]]  # the default return is unchanged
