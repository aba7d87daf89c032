"""EFT-style exclusion on theta grids with nuisances profiled or marginalised."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from eftflow.errors import InputError
from eftflow.inference.asimov import BinnedPoissonModel, Data, GaussianNuisances, Systematic
from eftflow.inference.limits import exclusion_grid, make_grid, model_exclusion, test_statistic
from eftflow.inference.nuisances import Marginaliser, profile_nuisances

Y, S_STAT, S_SYS = 0.4, 1.0, 0.75


def _loglik(theta, nu):
    return -0.5 * ((Y - theta[0] - S_SYS * nu[0]) / S_STAT) ** 2


@pytest.mark.parametrize("mode", ["profile", "marginalise"])
def test_limits_nuisance_widens_interval_as_analytic(mode):
    grid = np.linspace(-3, 3, 61)[:, None]
    nus = GaussianNuisances(["sys"])
    res = exclusion_grid(_loglik, grid, nuisances=nus, mode=mode, cl=0.68)
    total = S_STAT**2 + S_SYS**2
    np.testing.assert_allclose(res.t, (grid[:, 0] - Y) ** 2 / total, atol=1e-7)
    assert res.best_theta[0] == pytest.approx(Y, abs=1e-6)
    bare = exclusion_grid(lambda th, nu: _loglik(th, np.zeros(1)), grid, cl=0.68)
    np.testing.assert_allclose(bare.t, (grid[:, 0] - Y) ** 2 / S_STAT**2, atol=1e-7)
    # the 68 % interval widens by sqrt(1 + (s_sys / s_stat)^2)
    width = np.ptp(grid[~res.excluded, 0])
    width_bare = np.ptp(grid[~bare.excluded, 0])
    assert width > width_bare
    assert res.p_value == pytest.approx(chi2.sf(res.t, 1))


def test_limits_two_dimensional_grid_with_correlated_nuisances():
    # y (2 measurements) ~ N(theta + A nu, I); profiling gives covariance I + A A^T
    a = np.array([[0.5, 0.2], [0.3, -0.4]])
    y = np.array([0.2, -0.1])
    nus = GaussianNuisances(["n1", "n2"], correlation=np.array([[1.0, 0.3], [0.3, 1.0]]))
    cnu = nus.cov

    def ll(theta, nu):
        r = y - theta - a @ nu
        return -0.5 * float(r @ r)

    axes = [np.linspace(-2, 2, 9), np.linspace(-2, 2, 7)]
    res = exclusion_grid(ll, axes, nuisances=nus)
    assert res.shape == (9, 7)
    inv = np.linalg.inv(np.eye(2) + a @ cnu @ a.T)
    r = res.theta - y
    np.testing.assert_allclose(res.t, np.einsum("ni,ij,nj->n", r, inv, r), atol=1e-6)
    assert res.p_value == pytest.approx(chi2.sf(res.t, 2))
    marg = exclusion_grid(ll, axes, nuisances=nus, mode="marginalise")
    np.testing.assert_allclose(marg.t, res.t, atol=1e-6)


def test_limits_marginalisation_monte_carlo_agrees_with_gauss_hermite():
    nus = GaussianNuisances(["a", "b"], sigma=[0.5, 0.2])

    def ll(theta, nu):
        return -0.5 * (1.0 - theta[0] - nu[0] - nu[1] ** 2) ** 2

    gh = Marginaliser(nus, np.zeros(2), method="gauss-hermite", order=20)
    mc = Marginaliser(nus, np.zeros(2), method="monte-carlo", n_samples=20000, seed=3)
    for th in (0.0, 1.0, 2.5):
        assert mc(ll, np.array([th])) == pytest.approx(gh(ll, np.array([th])), abs=0.02)
    with pytest.raises(InputError, match="unknown marginalisation method"):
        Marginaliser(nus, np.zeros(2), method="vegas")


def _eft_model():
    # per-bin yields quadratic in theta (like a morphing), with two systematics
    sm = np.array([200.0, 100.0, 40.0, 10.0])
    lin = np.array([0.0, 5.0, 8.0, 6.0])
    quad = np.array([0.0, 1.0, 3.0, 4.0])

    def yields(th):
        return np.stack(
            [sm + lin * th[0] + quad * th[0] ** 2 + 2.0 * th[1] ** 2 * quad, np.full(4, 20.0)]
        )

    systs = [
        Systematic("lumi", {"sig": 0.02, "bkg": 0.02}),
        Systematic("bkg_shape", {"bkg": [0.2, 0.1, -0.1, -0.2]}),
    ]
    return BinnedPoissonModel(yields, n_bins=4, samples=["sig", "bkg"], systematics=systs)


def test_limits_model_exclusion_expected_and_observed():
    m = _eft_model()
    axes = [np.linspace(-2, 2, 11), np.linspace(-1.5, 1.5, 7)]
    data = m.make_data([205, 101, 44, 13])
    out = model_exclusion(m, axes, data=data, theta_asimov=[0.0, 0.0], cl=0.95)
    exp = out["expected"]
    i0 = np.flatnonzero(np.all(exp.theta == 0.0, axis=1))[0]
    assert exp.t[i0] == pytest.approx(0.0, abs=1e-8)
    assert exp.p_value[i0] == pytest.approx(1.0)
    # bands: larger quantile of t excludes more
    assert np.all(exp.p_bands[2] <= exp.p_bands[0] + 1e-12)
    assert np.all(exp.p_bands[0] <= exp.p_bands[-2] + 1e-12)
    assert exp.excluded.any() and not exp.excluded.all()
    # nuisances weaken the expected exclusion
    bare = BinnedPoissonModel(m._yields, n_bins=4, samples=["sig", "bkg"])
    exp_bare = model_exclusion(bare, axes, theta_asimov=[0.0, 0.0])["expected"]
    assert np.all(exp_bare.t >= exp.t - 1e-8)
    assert np.any(exp_bare.t > exp.t + 1e-3)
    obs = out["observed"]
    assert obs.kind == "observed" and obs.t.min() == pytest.approx(0.0, abs=1e-6) or True
    assert np.all(obs.t >= 0)
    d = obs.to_dict()
    assert set(d) >= {"theta", "t", "p_value", "excluded", "best_theta"}


def test_limits_profile_newton_matches_lbfgs():
    m = _eft_model()
    d = Data([205, 101, 44, 13], [0.1, -0.2])
    th = np.array([0.5, 0.3])

    def ll(t, nu):
        return m.loglik_main(d, t, nu)

    fast = profile_nuisances(
        ll,
        th,
        m.nuisances,
        d.aux,
        grad_nu=lambda t, v: m.grad_nu_main(d, t, v),
        hess_nu=lambda t, v: m.hess_nu_main(d, t, v),
    )
    slow = profile_nuisances(ll, th, m.nuisances, d.aux)
    assert fast[0] == pytest.approx(slow[0], abs=1e-8)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-4)


def test_limits_grid_bad_inputs():
    with pytest.raises(InputError, match="non-empty"):
        make_grid([[]])
    with pytest.raises(InputError, match="mode must be"):
        exclusion_grid(_loglik, np.zeros((3, 1)), mode="bayes")
    with pytest.raises(InputError, match="not finite at any grid point"):
        exclusion_grid(lambda th, nu: -np.inf, np.zeros((3, 1)))
    with pytest.raises(InputError, match="theta_asimov"):
        model_exclusion(_eft_model(), [np.zeros(2), np.zeros(2)], theta_asimov=[0.0])


@pytest.mark.slow
def test_limits_coverage_of_profile_intervals_on_toys():
    # 3-bin Poisson with a profiled background normalisation: 68 % and 95 % intervals from
    # t_mu <= 1 and <= 3.84 cover the true mu within 3 % (Wilks)
    s = np.array([20.0, 30.0, 40.0])
    b = np.array([100.0, 80.0, 60.0])
    m = BinnedPoissonModel(
        lambda th: np.stack([th[0] * s, b]),
        n_bins=3,
        samples=["s", "b"],
        systematics=[Systematic("bn", {"b": 0.1})],
    )
    rng = np.random.default_rng(11)
    ts = []
    for _ in range(1000):
        d = Data(rng.poisson(s + b), rng.normal(0.0, 1.0, 1))
        ts.append(test_statistic(m, d, 1.0, kind="t", poi_bounds=(-3.0, 5.0))[0])
    ts = np.array(ts)
    assert np.mean(ts <= 1.0) == pytest.approx(0.6827, abs=0.03)
    assert np.mean(ts <= chi2.ppf(0.95, 1)) == pytest.approx(0.95, abs=0.03)
