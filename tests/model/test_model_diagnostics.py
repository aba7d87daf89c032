"""Diagnostic gates beyond the Asimov closure: calibration, reweighting closure, ensemble spread
and variance against K on known answers; `eftflow build-model` records them and the report shows
them."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.inference.model.diagnostics import (
    calibration_curve,
    reweighting_closure,
    run_diagnostics,
    spread_map,
    variance_vs_ensemble_size,
)

from .test_model_cli import T1, morph_store, spec_dir  # noqa: F401  (module fixtures)

MU = 0.5  # θ0: N(MU, 1), θ1: N(0, 1); exact log r(x) = MU x − MU²/2


def _exact(x):
    return MU * x - MU**2 / 2


@pytest.fixture(scope="module")
def gauss():
    rng = np.random.default_rng(11)
    n = 20000
    return rng.normal(MU, 1.0, n), rng.normal(0.0, 1.0, n)


def _calibration(x0, x1, f):
    x = np.concatenate([x0, x1])
    labels = np.r_[np.ones(len(x0)), np.zeros(len(x1))]
    return calibration_curve(f(x), labels, n_bins=10)


def test_model_diag_exact_ratio_is_calibrated_and_closes(gauss):
    x0, x1 = gauss
    cal = _calibration(x0, x1, _exact)
    assert cal["ndf"] == 10
    assert cal["p_value"] > 1e-3 and cal["chi2"] < 10 + 5 * np.sqrt(20)
    assert np.allclose(cal["observed"], cal["predicted"], atol=5 * cal["error"].max())
    rw = reweighting_closure(x1[:, None], None, _exact(x1), x0[:, None], None, bins=20)
    o = rw["observables"]["x0"]
    assert o["ndf"] == 19 and 0.3 < o["chi2_ndf"] < 2.0
    assert rw["mean_ratio"] == pytest.approx(1.0, abs=0.03)
    # reweighting moves the reference onto the target: the unreweighted one is far off
    chi2_ref = np.sum((o["reference"] - o["target"]) ** 2 / (o["target_err"] ** 2 * 2))
    assert chi2_ref > 20 * o["chi2"]


@pytest.mark.parametrize("scale", [2.0, 0.3])
def test_model_diag_mistrained_ratio_fails_both(gauss, scale):
    x0, x1 = gauss
    wrong = lambda x: scale * _exact(x)  # noqa: E731
    cal = _calibration(x0, x1, wrong)
    assert cal["p_value"] < 1e-6 and cal["chi2_ndf"] > 10
    rw = reweighting_closure(x1, None, wrong(x1), x0, None, bins=20, names=["m"])
    assert rw["observables"]["m"]["chi2_ndf"] > 10
    res = run_diagnostics(
        calibration={"log_r": np.r_[wrong(x0), wrong(x1)], "labels": np.r_[x0 * 0 + 1, x1 * 0]},
        reweighting={"x_ref": x1, "w_ref": None, "log_r": wrong(x1), "x_target": x0,
                     "w_target": None},
    )  # fmt: skip
    assert not res["passed"] and len(res["warnings"]) == 2
    assert any("calibration" in w for w in res["warnings"])
    assert any("reweighting closure of x0" in w for w in res["warnings"])


def test_model_diag_exact_ratio_passes_the_gate(gauss):
    x0, x1 = gauss
    res = run_diagnostics(
        calibration={"log_r": _exact(np.r_[x0, x1]), "labels": np.r_[x0 * 0 + 1, x1 * 0]},
        reweighting={"x_ref": x1, "w_ref": None, "log_r": _exact(x1), "x_target": x0,
                     "w_target": None},
    )  # fmt: skip
    assert res["passed"] and res["warnings"] == []
    with pytest.raises(InputError, match="unknown diagnostic threshold") as e:
        run_diagnostics(members_log_r=np.zeros((2, 3)), thresholds={"chi2": 1.0})
    assert e.value.field == "diagnostics.chi2"


SIG = 0.7  # paired toy: latent z ~ N(0, 1), x = z + N(0, SIG²); target weights exp(MU z − MU²/2)


def _paired_exact(x):
    """Exact log r(x) = log E[exp(MU z − MU²/2) | x] of the paired toy."""
    m, v = x / (1 + SIG**2), SIG**2 / (1 + SIG**2)
    return MU * m + MU**2 * v / 2 - MU**2 / 2


@pytest.fixture(scope="module")
def paired():
    rng = np.random.default_rng(0)
    n = 20000
    z = rng.normal(size=n)
    x = z + SIG * rng.normal(size=n)
    return x, np.exp(MU * z - MU**2 / 2), np.ones(n)


def _paired_checks(x, w_t, w_r, log_r, *, pair: bool):
    n = len(x)
    cal = calibration_curve(
        np.r_[log_r, log_r],
        np.r_[np.ones(n), np.zeros(n)],
        np.r_[w_t, w_r],
        events=np.r_[np.arange(n), np.arange(n)] if pair else None,
    )
    rw = reweighting_closure(x, w_r, log_r, x, w_t, bins=20, same_events=pair)
    return cal, rw["observables"]["x0"]


def test_model_diag_paired_errors_are_calibrated_for_the_exact_ratio(paired):
    """The same events weighted at θ0 and θ1: with paired errors the exact ratio gives χ²/ndf
    about 1; the independent-sample errors make it about 0.05 (blind)."""
    x, w_t, w_r = paired
    cal, rw = _paired_checks(x, w_t, w_r, _paired_exact(x), pair=True)
    assert 0.3 < cal["chi2_ndf"] < 2.5 and cal["p_value"] > 1e-3
    assert 0.3 < rw["chi2_ndf"] < 2.0 and rw["ndf"] == 19
    assert rw["difference_err"].shape == (20,)
    cal0, rw0 = _paired_checks(x, w_t, w_r, _paired_exact(x), pair=False)
    assert cal0["chi2_ndf"] < 0.2 and rw0["chi2_ndf"] < 0.2  # the independent errors: far too big
    assert np.all(cal["error"] < cal0["error"] / 3)


def test_model_diag_paired_errors_see_a_ten_percent_error_the_independent_ones_miss(paired):
    x, w_t, w_r = paired
    wrong = 0.9 * _paired_exact(x)
    cal, rw = _paired_checks(x, w_t, w_r, wrong, pair=True)
    assert cal["p_value"] < 1e-6 and cal["chi2_ndf"] > 10
    assert rw["chi2_ndf"] > 5
    cal0, rw0 = _paired_checks(x, w_t, w_r, wrong, pair=False)
    assert cal0["p_value"] > 1e-3 and rw0["chi2_ndf"] < 2  # would pass the gate
    n = len(x)
    res = run_diagnostics(
        calibration={"log_r": np.r_[wrong, wrong], "labels": np.r_[np.ones(n), np.zeros(n)],
                     "weights": np.r_[w_t, w_r], "events": np.r_[np.arange(n), np.arange(n)]},
        reweighting={"x_ref": x, "w_ref": w_r, "log_r": wrong, "x_target": x, "w_target": w_t,
                     "same_events": True},
    )  # fmt: skip
    assert not res["passed"] and len(res["warnings"]) == 2
    gap = re.search(r"largest \|observed − predicted\| = ([0-9.e-]+)\)", res["warnings"][0])
    cal_res = res["calibration"]
    assert gap and float(gap.group(1)) == pytest.approx(
        np.max(np.abs(cal_res["observed"] - cal_res["predicted"])), rel=1e-2
    )


def test_model_diag_distinct_event_ids_give_the_binomial_error(gauss):
    """Every row its own event: the delta-method error is the binomial one of the fraction."""
    x0, x1 = gauss
    x = np.concatenate([x0, x1])
    labels = np.r_[np.ones(len(x0)), np.zeros(len(x1))]
    plain = calibration_curve(_exact(x), labels, n_bins=10)
    ids = calibration_curve(_exact(x), labels, n_bins=10, events=np.arange(len(x)))
    np.testing.assert_allclose(ids["observed"], plain["observed"])
    f, n_b = ids["observed"], plain["weight"] * len(x) / 2  # equal weights: rows per bin
    np.testing.assert_allclose(ids["error"], np.sqrt(f * (1 - f) / n_b), rtol=1e-6)
    np.testing.assert_allclose(ids["error"], plain["error"], rtol=0.02)


def test_model_diag_reweighting_bins_see_a_light_tail():
    """A tail with 20 % of the events but 0.03 % of the weight, whose ratio the estimator misses
    (as an EFT high-mass slice): equal-count bins give it bins of its own and flag it."""
    rng = np.random.default_rng(3)
    n = 20000
    x = rng.uniform(0.0, 1.0, n)
    tail = x > 0.8
    w_ref = np.where(tail, 1e-3, 1.0)
    w_target = w_ref * np.where(tail, 1.3, 1.0)  # the target raises the tail by 30 %
    blind = np.zeros(n)  # log r̂ = 0: the estimator sees nothing
    o = reweighting_closure(x, w_ref, blind, x, w_target, bins=20, same_events=True)
    o = o["observables"]["x0"]
    assert np.sum(o["edges"] > 0.8) >= 3  # the tail has bins of its own
    assert o["chi2_ndf"] > 100 and o["p_value"] < 1e-6
    exact = np.log(w_target / w_target.sum()) - np.log(w_ref / w_ref.sum())
    good = reweighting_closure(x, w_ref, exact, x, w_target, bins=20, same_events=True)
    assert good["observables"]["x0"]["chi2"] < 1e-6


def test_model_diag_paired_inputs_are_checked(paired):
    x, w_t, w_r = paired
    n = len(x)
    lr = _paired_exact(x)
    labels = np.r_[np.ones(n), np.zeros(n)]
    with pytest.raises(InputError, match="one id per row") as e:
        calibration_curve(np.r_[lr, lr], labels, events=np.arange(n))
    assert e.value.field == "events"
    with pytest.raises(InputError, match="different log r̂"):  # rows 0 and n: not the same x
        calibration_curve(np.r_[lr, lr[::-1]], labels, events=np.r_[np.arange(n), np.arange(n)])
    with pytest.raises(InputError, match="same events") as e:
        reweighting_closure(x, w_r, lr, x[::-1], w_t, same_events=True)
    assert e.value.field == "x_target"


def test_model_diag_reweighting_warns_on_chi2_ndf_and_p_value_together(monkeypatch):
    """Two bins with χ²/ndf = 2.5 (p ≈ 0.08) are chance; 19 bins with χ²/ndf = 2.5 are not."""
    from scipy.stats import chi2 as c2

    from eftflow.inference.model import diagnostics as dg

    def fake(chi2, ndf):
        o = {"chi2": chi2, "ndf": ndf, "chi2_ndf": chi2 / ndf, "p_value": float(c2.sf(chi2, ndf))}
        return {"mean_ratio": 1.0, "observables": {"n_j": o}}

    monkeypatch.setattr(dg, "reweighting_closure", lambda **kw: fake(*kw["args"]))
    few = dg.run_diagnostics(reweighting={"args": (5.0, 2)})
    many = dg.run_diagnostics(reweighting={"args": (47.5, 19)})
    strict = dg.run_diagnostics(
        reweighting={"args": (5.0, 2)}, thresholds={"reweighting_p_value": 0.1}
    )
    assert few["passed"]
    assert not many["passed"] and "χ²/ndf = 47.5/19 above 2 (p = " in many["warnings"][0]
    assert not strict["passed"]


def test_model_diag_variance_falls_like_one_over_k_for_independent_members():
    rng = np.random.default_rng(4)
    members = rng.normal(0.0, 0.3, size=(8, 3000)) + np.linspace(-1, 1, 3000)
    vk = variance_vs_ensemble_size(members, n_resample=100, rng=np.random.default_rng(1))
    assert vk["k"] == list(range(1, 9))
    assert vk["slope"] == pytest.approx(-1.0, abs=0.1)
    # bootstrap of the members: Var[mean of K] = σ²(ddof 0)/K
    sigma2 = members.var(0).mean()
    assert np.allclose(vk["variance"] * np.array(vk["k"]), sigma2, rtol=0.15)
    res = run_diagnostics(members_log_r=members, rng=np.random.default_rng(2))
    assert res["passed"] and res["spread"]["median_std"] == pytest.approx(0.3, rel=0.1)


def test_model_diag_identical_members_have_zero_spread():
    one = np.linspace(-2, 2, 50)
    mean, std = spread_map(np.stack([one] * 5))
    assert np.array_equal(mean, one) and np.all(std == 0)
    vk = variance_vs_ensemble_size(np.stack([one] * 5))
    assert np.all(vk["variance"] == 0) and vk["slope"] is None
    assert np.all(spread_map(one[None])[1] == 0)
    with pytest.raises(InputError, match="n_members, n_events"):
        spread_map(one)
    with pytest.raises(InputError, match="zeros and ones"):
        calibration_curve(one, np.full(50, 2))


def test_model_diag_build_model_records_the_diagnostics(spec_dir, tmp_path):  # noqa: F811
    from eftflow.cli import main

    built = tmp_path / "built"
    assert main(["build-model", str(spec_dir / "spec.yaml"), "-o", str(built), *T1]) == 0
    desc = json.loads((built / "model.json").read_text())
    (d,) = desc["diagnostics"]
    assert (d["region"], d["process"]) == ("sr", "sig")
    assert d["spread"]["n_members"] == 2 and d["spread"]["n_events"] == 400
    assert d["spread"]["max_std"] > 0 and "std" not in d["spread"]
    assert d["variance_vs_k"]["k"] == [1, 2] and len(d["variance_vs_k"]["variance"]) == 2
    assert "reweighting" not in d  # a .npy pool carries no target weights
    for f in ("diag_sr_sig_spread.png", "diag_sr_sig_variance_k.png"):
        assert (built / "plots" / f).stat().st_size > 0
    # the report's Statistical model section shows them
    from eftflow.report.registry import ReportContext
    from eftflow.report.sections.model import _diagnostics

    html = "\n".join(_diagnostics(ReportContext(results=tmp_path), "x", {"model_dir": built}))
    assert "Ensemble diagnostics at the Asimov point" in html
    assert "<figcaption>diag sr sig spread</figcaption>" in html
    # and --no-diagnostics leaves them out
    bare = tmp_path / "bare"
    args = ["build-model", str(spec_dir / "spec.yaml"), "-o", str(bare), "--no-diagnostics"]
    assert main([*args, "--skip-closure", *T1]) == 0
    assert "diagnostics" not in json.loads((bare / "model.json").read_text())


def test_model_diag_store_target_and_exact_reweighting_closure(morph_store):  # noqa: F811
    """A store pool weighted at the SM: the target is the same events weighted at another
    benchmark; the exact ratio of the weights closes with χ² = 0."""
    from eftflow.cli.cmd_model import _store_target

    d, st, _, x, w = morph_store
    u = {
        "name": "sr",
        "store": "events.zarr",
        "partition": "test",
        "pool_weights": {"setup": "setup.h5", "theta": "sm"},
    }
    x_t, w_t, theta, bench = _store_target({"_base": str(d)}, u)
    names = [b.name for b in st.physics_benchmarks()]
    k = names.index(bench)
    assert bench != "sm" and np.allclose(x_t, x[80:100])
    # the weights at the benchmark (scaled by the partition's share of the events)
    assert np.allclose(w_t / w_t.sum(), w[80:100, k] / w[80:100, k].sum())
    assert set(theta) == set(st.parameter_names)
    w_ref = w[80:100, names.index("sm")]
    lr = np.log(w_t / w_t.sum()) - np.log(w_ref / w_ref.sum())
    rw = reweighting_closure(x_t, w_ref, lr, x_t, w_t, bins=4, names=["a", "b", "c"])
    assert all(o["chi2"] == pytest.approx(0.0, abs=1e-12) for o in rw["observables"].values())
    assert _store_target({"_base": str(d)}, {"store": "events.zarr"}) is None


def test_model_diag_build_model_on_a_store_pool_adds_reweighting_and_calibration(
    spec_dir,  # noqa: F811
    morph_store,  # noqa: F811
    tmp_path,
):
    import yaml

    from eftflow.cli import main

    d = morph_store[0]
    spec = yaml.safe_load((spec_dir / "spec.yaml").read_text())
    spec["binned"] = []
    spec["unbinned"][0].pop("pool")
    spec["unbinned"][0].update(
        store=str(d / "events.zarr"),
        observables=["a"],
        pool_weights={"setup": str(d / "setup.h5"), "theta": "sm"},
    )
    spec["unbinned"][0]["processes"][0]["ensemble"] = str(spec_dir / "nu_network/ensemble")
    spec["poi"] = "theta_1"  # a free POI: the model is also fitted to the store's own weights
    spec["parameters"][0]["fixed"] = False
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    built = tmp_path / "built"
    args = ["build-model", str(tmp_path / "spec.yaml"), "-o", str(built), "--skip-closure"]
    assert main([*args, *T1]) == 0
    (diag,) = json.loads((built / "model.json").read_text())["diagnostics"]
    assert diag["target"]["benchmark"] != "sm" and diag["spread"]["n_events"] == 100
    assert diag["calibration"]["ndf"] >= 1 and diag["calibration"]["chi2"] >= 0
    assert set(diag["reweighting"]["observables"]) == {"a"}
    # the pool at the SM and at the target are the same events: paired errors
    assert len(diag["reweighting"]["observables"]["a"]["difference_err"]) >= 1
    for f in ("calibration", "reweight_a", "spread", "variance_k"):
        assert (built / "plots" / f"diag_sr_sig_{f}.png").stat().st_size > 0
    # fits to the store's own weights at 1/4, 1/2, 3/4 of the way to the target
    fits = diag["store_fits"]
    assert [f["fraction"] for f in fits] == [0.25, 0.5, 0.75]
    assert all(np.isfinite(f["fitted"]) and f["error"] > 0 for f in fits)
    from eftflow.report.registry import ReportContext
    from eftflow.report.sections.model import _diagnostics

    html = "\n".join(_diagnostics(ReportContext(results=tmp_path), "x", {"model_dir": built}))
    assert "Fits to the store&#x27;s own weights" in html
    assert f"{fits[0]['pull']:+.2f}" in html
    # eftflow inspect says how the diagnostics came out
    from eftflow.inspect import inspect_path

    said = inspect_path(built)["diagnostics sr/sig"]
    assert said == "passed" if diag["passed"] else said.startswith(f"{len(diag['warnings'])} warn")


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    """The analytic toy as a store: x is the whole event, so the store's weights at any θ are
    the exact p(x|θ) of the events (no parton-level information beyond x)."""
    from eftflow.generate.toy import toy_setup

    from ..sampling.conftest import write_toy_store

    d = tmp_path_factory.mktemp("toy_fits")
    st = toy_setup()
    st.save(d / "setup.h5")
    write_toy_store(d / "events.zarr", st, 20_000, 5)
    return d


def _toy_fit_model(d, scale: float):
    """StatModel: pool = the store's test events at the SM, log r = scale × the exact log ratio,
    rate L σ(θ) exact; POI theta_1, theta_2 fixed at 0."""
    import torch

    from eftflow.inference.model import (
        ExactLogRatio,
        ModelParameter,
        Process,
        StatModel,
        UnbinnedRegion,
    )
    from eftflow.inference.model.store_source import pool_from_store

    x, w = pool_from_store(d / "events.zarr", partition="test", observables=["x", "x2"],
                           setup=d / "setup.h5", theta="sm")  # fmt: skip

    def log_r(xx, p):
        f = 1 + p[:, :1] * xx[None, :, 0] + p[:, 1:2] * (xx[None, :, 0] ** 2 - 1)
        norm = torch.log(1 + p[:, :1] ** 2 + 2 * p[:, 1:2] ** 2)
        return scale * (torch.log(f * f) - norm)

    def rate(p):
        return 100.0 * 10.0 * (1 + p[:, 0] ** 2 + 2 * p[:, 1] ** 2)  # L = 100, σ0 = 10 pb

    proc = Process("sig", ExactLogRatio(log_r, ["theta_1", "theta_2"]), rate=rate,
                   rate_parameters=["theta_1", "theta_2"])  # fmt: skip
    region = UnbinnedRegion("sr", x, [proc], pool_weights=w)
    pars = [ModelParameter("theta_1", 0.0, -1.0, 1.0, kind="poi"),
            ModelParameter("theta_2", 0.0, -1.0, 1.0, fixed=True)]  # fmt: skip
    return StatModel([region], pars, poi="theta_1", device="cpu"), region


@pytest.mark.parametrize("scale", [1.0, 0.3, 2.0])
def test_model_diag_store_weight_fits_see_a_wrong_sensitivity(toy_store, scale):
    """Fits to the store's own weights: the exact ratio finds the truth (x is the whole event);
    a log-ratio 0.3 times too small fits too far from the reference, one twice too large too
    close, and both are flagged."""
    from eftflow.cli.cmd_model import STORE_FIT_FRACTIONS, _store_target, store_weight_fits
    from eftflow.inference.model.diagnostics import check_store_fits

    d = toy_store
    spec = {"_base": str(d), "asimov": {}}
    u = {"store": "events.zarr", "partition": "test", "observables": ["x", "x2"],
         "pool_weights": {"setup": "setup.h5", "theta": "sm"}}  # fmt: skip
    target = _store_target(spec, u)
    assert target[3] == "t1_pos" and target[2]["theta_1"] > 0
    model, region = _toy_fit_model(d, scale)
    fits = store_weight_fits(spec, model, region, u, target, max_events=10_000)
    assert [f["fraction"] for f in fits] == list(STORE_FIT_FRACTIONS)
    assert all(f["parameter"] == "theta_1" and f["reference"] == 0.0 for f in fits)
    warnings = check_store_fits(fits)
    if scale == 1.0:
        for f in fits:
            assert f["fitted"] == pytest.approx(f["true"], abs=1e-4) and abs(f["pull"]) < 0.05
        assert warnings == []
    else:
        away = [abs(f["fitted"]) > abs(f["true"]) for f in fits]
        assert all(away) if scale < 1 else not any(away)
        assert len(warnings) == 1
        assert ("too insensitive" if scale < 1 else "too noisy or too sensitive") in warnings[0]
