"""CLs, q~_mu, Asimov bands and discovery against pyhf and the Cowan et al. formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from eftflow.errors import InputError
from eftflow.inference.asimov import (
    BinnedPoissonModel,
    Data,
    GaussianModel,
    Systematic,
    asimov_data,
    counting_model,
)
from eftflow.inference.limits import (
    cls_from_q,
    discovery,
    expected_cls,
    hypotest,
    test_statistic,
    upper_limit,
)

# pyhf validates its model spec with jsonschema's deprecated RefResolver
pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated")


def _pyhf_model(s, b, delta=None):
    pyhf = pytest.importorskip("pyhf")
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer(tolerance=1e-12))
    bkg = {"name": "background", "data": [b], "modifiers": []}
    if delta is not None:
        bkg["modifiers"].append(
            {
                "name": "bkg_norm",
                "type": "normsys",
                "data": {"hi": 1 + delta, "lo": 1 / (1 + delta)},
            }
        )
    spec = {
        "channels": [
            {
                "name": "c",
                "samples": [
                    {
                        "name": "signal",
                        "data": [s],
                        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
                    },
                    bkg,
                ],
            }
        ]
    }
    # normsys with exponential interpolation (code1) is exactly (1 + delta) ** nu
    model = pyhf.Model(spec, modifier_settings={"normsys": {"interpcode": "code1"}}, poi_name="mu")
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, 20.0)
    return pyhf, model, bounds


@pytest.mark.parametrize("delta", [None, 0.1])
@pytest.mark.parametrize("mu", [0.5, 1.0, 2.5])
def test_limits_cls_and_qtilde_equal_pyhf(mu, delta):
    s, b, n = 5.0, 10.0, 12
    pyhf, pm, bounds = _pyhf_model(s, b, delta)
    data = [n] + pm.config.auxdata
    cls_obs, cls_exp = pyhf.infer.hypotest(
        mu, data, pm, test_stat="qtilde", return_expected_set=True, par_bounds=bounds
    )
    qt = pyhf.infer.test_statistics.qmu_tilde(
        mu, data, pm, pm.config.suggested_init(), bounds, pm.config.suggested_fixed()
    )
    m = counting_model(s, b, background_uncertainty=delta)
    r = hypotest(m, m.make_data([n]), mu, test_stat="qtilde", poi_bounds=(-20.0, 20.0))
    assert r.q == pytest.approx(float(qt), abs=1e-6)
    assert r.cls == pytest.approx(float(cls_obs), abs=1e-6)
    np.testing.assert_allclose(r.cls_expected, np.ravel(cls_exp), atol=1e-6)


def test_limits_upper_limit_is_where_pyhf_cls_equals_alpha():
    pyhf, pm, bounds = _pyhf_model(5.0, 10.0, 0.1)
    data = [12] + pm.config.auxdata
    m = counting_model(5.0, 10.0, background_uncertainty=0.1)
    ul = upper_limit(m, m.make_data([12]), cl=0.95)
    cls_obs = pyhf.infer.hypotest(ul.observed, data, pm, test_stat="qtilde", par_bounds=bounds)
    assert float(cls_obs) == pytest.approx(0.05, abs=1e-6)
    _, cls_exp = pyhf.infer.hypotest(
        ul.expected[3], data, pm, test_stat="qtilde", par_bounds=bounds, return_expected_set=True
    )
    assert float(np.ravel(cls_exp)[3]) == pytest.approx(0.05, abs=1e-6)  # +1 sigma band
    assert "upper limit" in ul.summary()


def test_limits_gaussian_expected_limits_closed_form():
    # x ~ N(mu * s, sigma): sigma_mu = sigma / s is exact, so are the CCGV band formulas
    s, sigma, alpha = 2.0, 3.0, 0.05
    model = GaussianModel(lambda th, nu: np.array([s * th[0]]), [[sigma**2]])
    data = model.make_data([1.0])
    ul = upper_limit(model, data, cl=1 - alpha, test_stat="q")
    sig_mu = sigma / s
    for k, n in enumerate((-2, -1, 0, 1, 2)):
        expected = sig_mu * (norm.ppf(1 - alpha * norm.cdf(n)) + n)
        assert ul.expected[k] == pytest.approx(expected, rel=1e-6)
    assert ul.expected[2] == pytest.approx(sig_mu * norm.ppf(1 - alpha / 2), rel=1e-6)
    # observed: CLs(mu) = (1 - Phi(sqrt q)) / Phi(sqrt(q_A) - sqrt(q)), q = ((mu - mu_hat)/sig)^2
    mu_hat = 1.0 / s
    mu = ul.observed
    q, qa = ((mu - mu_hat) / sig_mu) ** 2, (mu / sig_mu) ** 2
    cls = (1 - norm.cdf(math.sqrt(q))) / norm.cdf(math.sqrt(qa) - math.sqrt(q))
    assert cls == pytest.approx(alpha, rel=1e-6)


def test_limits_counting_median_limit_asimov_formula():
    # b known: q_A(mu) = 2 (mu s - b ln(1 + mu s / b)); the median CLs limit solves
    # sqrt(q_A(mu_up)) = Phi^-1(1 - alpha / 2) (Cowan et al.), -> sqrt(b)/s * 1.96 for large b
    from scipy.optimize import brentq

    s, b = 1.0, 400.0
    m = counting_model(s, b)
    ul = upper_limit(m, m.make_data([b]), cl=0.95)

    def qa(mu):
        return 2 * (mu * s - b * math.log(1 + mu * s / b))

    mu_up = brentq(lambda mu: math.sqrt(qa(mu)) - norm.ppf(0.975), 1.0, 500.0)
    assert ul.expected[2] == pytest.approx(mu_up, rel=1e-6)
    assert ul.expected[2] == pytest.approx(math.sqrt(b) / s * norm.ppf(0.975), rel=5e-2)


def test_limits_discovery_asimov_significance_formula():
    s, b = 10.0, 20.0
    m = counting_model(s, b)
    res = discovery(m, m.make_data([35]))
    za = math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s))
    assert res.expected_significance == pytest.approx(za, rel=1e-6)
    n = 35.0
    z_obs = math.sqrt(2 * (n * math.log(n / b) - (n - b)))
    assert res.significance == pytest.approx(z_obs, rel=1e-6)
    assert res.p0 == pytest.approx(norm.sf(z_obs), rel=1e-5)


def test_limits_test_statistic_definitions():
    m = counting_model(10.0, 20.0)
    d = m.make_data([15])  # mu_hat = -0.5 (deficit)
    t, mu_hat = test_statistic(m, d, 1.0, kind="t", poi_bounds=(-1.5, 5))
    tt, mu_hat_t = test_statistic(m, d, 1.0, kind="ttilde", poi_bounds=(-1.5, 5))
    assert mu_hat == pytest.approx(-0.5, abs=1e-6)
    assert mu_hat_t == 0.0
    assert tt < t
    q, _ = test_statistic(m, m.make_data([40]), 1.0, kind="q", poi_bounds=(-1.5, 5))
    assert q == 0.0  # mu_hat = 2 > mu: no evidence against mu
    q0, _ = test_statistic(m, d, 0.0, kind="q0", poi_bounds=(-1.5, 5))
    assert q0 == 0.0
    # cls_from_q for q <= q_A equals the textbook expression
    clsb, clb, cls = cls_from_q(1.0, 4.0)
    assert cls == pytest.approx((1 - norm.cdf(1.0)) / norm.cdf(2.0 - 1.0))
    assert expected_cls(0.0)[2] == pytest.approx(1.0)


def test_limits_asimov_data_and_binned_model():
    sig = np.array([1.0, 2.0, 3.0])
    bkg = np.array([10.0, 8.0, 6.0])
    m = BinnedPoissonModel(
        lambda th: np.stack([th[0] * sig, bkg]),
        n_bins=3,
        samples=["s", "b"],
        systematics=[Systematic("shape", {"b": [0.1, 0.0, -0.1]})],
    )
    a = asimov_data(m, None, 1.0)
    np.testing.assert_allclose(a.main, sig + bkg)
    shifted = asimov_data(m, None, 1.0, nu=np.array([1.0]))
    np.testing.assert_allclose(shifted.main, sig + bkg * np.array([1.1, 1.0, 0.9]))
    # analytic nu-gradient and Hessian match finite differences
    d = Data([12.0, 9.0, 7.0], [0.0])
    nu = np.array([0.3])
    h = 1e-5
    g_num = (m.loglik_main(d, [1.0], nu + h) - m.loglik_main(d, [1.0], nu - h)) / (2 * h)
    assert m.grad_nu_main(d, [1.0], nu)[0] == pytest.approx(g_num, rel=1e-6)
    h_num = (m.grad_nu_main(d, [1.0], nu + h) - m.grad_nu_main(d, [1.0], nu - h)) / (2 * h)
    assert m.hess_nu_main(d, [1.0], nu)[0, 0] == pytest.approx(h_num[0], rel=1e-6)


def test_limits_bad_inputs():
    m = counting_model(5.0, 10.0)
    d = m.make_data([10])
    with pytest.raises(InputError, match="unknown test statistic"):
        test_statistic(m, d, 1.0, kind="qq")
    with pytest.raises(InputError, match="cl must be in"):
        upper_limit(m, d, cl=1.5)
    with pytest.raises(InputError, match="non-negative counts"):
        m.make_data([-1])
    with pytest.raises(InputError, match="unknown sample 'sig'"):
        BinnedPoissonModel(
            lambda th: np.ones((1, 2)), n_bins=2, systematics=[Systematic("x", {"sig": 0.1})]
        )
    with pytest.raises(InputError, match="stays above alpha"):
        upper_limit(m, d, poi_bounds=(-1.0, 0.5))
    flat = counting_model(0.0, 10.0)
    with pytest.raises(InputError, match="does not change the likelihood"):
        upper_limit(flat, flat.make_data([10]))
