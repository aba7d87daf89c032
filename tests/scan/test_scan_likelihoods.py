"""Built-in likelihood forms against closed forms, numerical integration and optimisation."""

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from eftflow.inference.scan import likelihoods as lk

X, SIG = 10.0, 1.0


def _gauss_joint(eps, x, mu, s, se):
    return stats.norm.pdf(x, mu + eps, s) * stats.norm.pdf(eps, 0, se)


@pytest.mark.parametrize("mu", [7.0, 10.0, 12.5])
@pytest.mark.parametrize("se", [0.5, 2.0])
def test_gaussian_forms(mu, se):
    assert lk.gaussian_loglike(X, mu, SIG) == pytest.approx(stats.norm.logpdf(X, mu, SIG))
    marg = integrate.quad(_gauss_joint, -50, 50, args=(X, mu, SIG, se))[0]
    assert lk.gaussian_marginalised(X, mu, SIG, se) == pytest.approx(np.log(marg), rel=1e-8)
    best = optimize.minimize_scalar(
        lambda e: -_gauss_joint(e, X, mu, SIG, se),
        bounds=(-20, 20),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert lk.gaussian_profiled(X, mu, SIG, se) == pytest.approx(np.log(-best.fun), rel=1e-6)


def _upper_joint(eps, x, mu, s, se):
    like = stats.norm.pdf(0, 0, s) if mu + eps <= x else stats.norm.pdf(x, mu + eps, s)
    return like * stats.norm.pdf(eps, 0, se)


@pytest.mark.parametrize("mu", [5.0, 10.0, 11.5, 14.0])
def test_gaussian_upper_limit_forms(mu):
    se = 0.7
    plain = stats.norm.logpdf(0, 0, SIG) if mu <= X else stats.norm.logpdf(X, mu, SIG)
    assert lk.gaussian_upper_limit(X, mu, SIG) == pytest.approx(plain)
    marg = integrate.quad(_upper_joint, -30, 30, args=(X, mu, SIG, se), points=[X - mu])[0]
    assert lk.gaussian_upper_limit(X, mu, SIG, se) == pytest.approx(np.log(marg), rel=1e-7)
    # the joint is piecewise smooth with a kink at eps = x - mu: maximise on each side
    prof = max(
        -optimize.minimize_scalar(
            lambda e: -_upper_joint(e, X, mu, SIG, se),
            bounds=b,
            method="bounded",
            options={"xatol": 1e-10},
        ).fun
        for b in ((-15, X - mu), (X - mu, 15))
    )
    assert lk.gaussian_upper_limit(X, mu, SIG, se, profile=True) == pytest.approx(
        np.log(prof), abs=1e-6
    )
    # lower limit mirrors the upper one
    assert lk.gaussian_lower_limit(-X, -mu, SIG, se) == pytest.approx(
        lk.gaussian_upper_limit(X, mu, SIG, se)
    )


def _logn_joint(eps, x, mu, sp, sep):
    return stats.lognorm.pdf(x, sp, scale=mu * eps) * stats.lognorm.pdf(eps, sep)


@pytest.mark.parametrize("mu", [6.0, 10.0, 13.0])
def test_lognormal_forms(mu):
    sp, sep = np.log1p(SIG / X), np.log1p(0.15)
    assert lk.lognormal_loglike(X, mu, sp) == pytest.approx(stats.lognorm.logpdf(X, sp, scale=mu))
    marg = integrate.quad(_logn_joint, 1e-6, 10, args=(X, mu, sp, sep), limit=200)[0]
    assert lk.lognormal_marginalised(X, mu, sp, sep) == pytest.approx(np.log(marg), rel=1e-7)

    # profiled: maximise the joint density of GAMBIT eq. (67) (normalised with 2π, 1/ε)
    def joint67(e):
        return np.exp(
            -(np.log(X / (e * mu)) ** 2) / (2 * sp**2) - np.log(e) ** 2 / (2 * sep**2)
        ) / (2 * np.pi * sp * sep * X * e)

    best = optimize.minimize_scalar(
        lambda e: -joint67(e), bounds=(0.2, 5), method="bounded", options={"xatol": 1e-12}
    )
    assert lk.lognormal_profiled(X, mu, sp, sep) == pytest.approx(np.log(-best.fun), rel=1e-7)
    eps_hat = np.exp(sep**2 * (np.log(X / mu) - sp**2) / (sp**2 + sep**2))  # eq. (68)
    assert best.x == pytest.approx(eps_hat, rel=1e-4)


def test_fisher_component(tmp_path):
    from eftflow.inference.scan.components import get_function

    path = tmp_path / "fisher.json"
    path.write_text(
        '{"parameters": ["a", "b"], "fisher_information": [[4, 1], [1, 2]], "center": [0.1, 0]}'
    )
    func = get_function("fisher")
    opts = func.setup({"file": str(path)}, None, "components.f.options")
    val = func.fn({"a": 0.6, "b": -1.0}, opts)
    d = np.array([0.5, -1.0])
    assert val == pytest.approx(-0.5 * d @ np.array([[4, 1], [1, 2]]) @ d)
    np.savez(tmp_path / "f.npz", fisher_information=np.eye(2), parameters=np.array(["a", "b"]))
    opts = func.setup({"file": str(tmp_path / "f.npz")}, None, "x")
    assert func.fn({"a": 1.0, "b": 1.0}, opts) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "options, field",
    [
        ({"file": "nope.json"}, "components.f.options.file"),
        ({"file": "fisher.json", "center": [0.5]}, "components.f.options.center"),
        ({"file": "fisher.json", "center": [0.1, 0.2, 0.3]}, "components.f.options.center"),
    ],
)
def test_fisher_component_bad_options_name_the_scan_file(tmp_path, options, field):
    from eftflow.errors import InputError
    from eftflow.inference.scan.components import get_function

    (tmp_path / "fisher.json").write_text(
        '{"parameters": ["a", "b"], "fisher_information": [[4, 1], [1, 2]]}'
    )
    spec = tmp_path / "scan.yaml"
    with pytest.raises(InputError) as info:
        get_function("fisher").setup(options, str(spec), "components.f.options")
    assert info.value.file == str(spec) and info.value.field == field
