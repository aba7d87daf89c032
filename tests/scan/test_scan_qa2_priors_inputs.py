"""Priors in the tails, bad scan files caught before output, and evidence closure tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from eftflow.errors import ConfigError
from eftflow.inference.scan.priors import transform
from eftflow.inference.scan.run import run_scan

U = np.random.default_rng(11).random(20_000)


@pytest.mark.parametrize("rng", [(8.5, 10.0), (5.0, 6.0), (0.5, 3.0), (-10.0, -8.5), (-1.0, 4.0)])
def test_scan_qa2_truncated_gaussian_prior_in_the_tails(rng):
    x = transform("gaussian", U, mean=0.0, sigma=1.0, range=rng)
    assert np.all(np.isfinite(x))
    assert np.all((x >= rng[0]) & (x <= rng[1]))
    assert stats.kstest(x, stats.truncnorm(*rng).cdf).pvalue > 1e-3


def test_scan_qa2_truncated_lognormal_prior_far_upper_tail():
    # ln x ~ N(0, 0.1) truncated to x in [3, 4]: ln 3 is 11 sigma above the mean
    x = transform("lognormal", U, mean=0.0, sigma=0.1, range=(3.0, 4.0))
    assert np.all(np.isfinite(x)) and np.all((x >= 3.0) & (x <= 4.0))
    a, b = np.log(3.0) / 0.1, np.log(4.0) / 0.1
    assert stats.kstest(np.log(x), stats.truncnorm(a, b, scale=0.1).cdf).pvalue > 1e-3


def _spec(params, expr, scanner="random", options=None):
    return {
        "seed": 3,
        "models": {"M": {"parameters": params}},
        "components": {"like": {"function": "loglike_expression", "options": {"expr": expr}}},
        "scanner": {"name": scanner, "options": options or {}},
    }


def test_scan_qa2_grid_points_per_dim_mismatch_fails_before_output(tmp_path, make_scan):
    spec = make_scan("grid", {"points_per_dim": [3]})
    with pytest.raises(ConfigError) as err:
        run_scan(spec, output=tmp_path / "out", use_mpi=False)
    assert err.value.field == "scanner.options.points_per_dim"
    assert not (tmp_path / "out").exists()


def test_scan_qa2_grid_mismatch_names_the_scan_file(tmp_path, make_scan):
    import yaml

    path = tmp_path / "scan.yaml"
    path.write_text(yaml.safe_dump(make_scan("grid", {"points_per_dim": [3, 4, 5]})))
    with pytest.raises(ConfigError) as err:
        run_scan(path, output=tmp_path / "out", use_mpi=False)
    assert err.value.file == str(path) and "3 entries for 2" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_scan_qa2_no_sampled_parameter_is_a_config_error(tmp_path):
    spec = _spec(
        {"x": {"prior": "fixed", "value": 0.3}, "y": {"prior": "derived", "expr": "2*x"}},
        "-0.5*(x-y)**2",
    )
    with pytest.raises(ConfigError) as err:
        run_scan(spec, output=tmp_path / "out", use_mpi=False)
    assert err.value.field == "models" and "no sampled parameter" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_scan_qa2_flat_range_overflowing_width_is_refused(tmp_path):
    spec = _spec({"x": {"prior": "flat", "range": [-1e308, 1e308]}}, "-0.5*x**2")
    with pytest.raises(ConfigError) as err:
        run_scan(spec, output=tmp_path / "out", use_mpi=False)
    assert err.value.field == "models.M.parameters.x.range"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("params", "expr", "log_z"),
    [
        (  # Gaussian prior N(0, 1) x Gaussian likelihood (0.5, 0.3), unnormalised
            {"x": {"prior": "gaussian", "mean": 0, "sigma": 1}},
            "-0.5*((x-0.5)/0.3)**2",
            0.5 * math.log(2 * math.pi * 0.09) + stats.norm.logpdf(0.5, 0, math.sqrt(1.09)),
        ),
        (  # log prior on [0.01, 100] x Gaussian in ln x
            {"x": {"prior": "log", "range": [0.01, 100]}},
            "-0.5*(log(x)/0.5)**2",
            math.log(math.sqrt(2 * math.pi) * 0.5 / math.log(1e4)),
        ),
    ],
)
def test_scan_qa2_dynesty_evidence_with_non_flat_priors(tmp_path, params, expr, log_z):
    spec = _spec(params, expr, "dynesty", {"nlive": 150, "dlogz": 0.1})
    summary = run_scan(spec, output=tmp_path / "out", use_mpi=False)
    assert abs(summary.info["logZ"] - log_z) < 4 * summary.info["logZerr"]


def test_scan_qa2_all_points_invalid_reports_no_best_fit(tmp_path):
    from eftflow.errors import InputError
    from eftflow.inference.scan.analysis import load_scan

    # log of a negative number: every point is invalid (Invalidation Code 1)
    spec = _spec({"x": {"prior": "flat", "range": [-2, -1]}}, "log(x)", "random", {"n_points": 5})
    summary = run_scan(spec, output=tmp_path / "out", use_mpi=False)
    assert summary.n_points == 5 and summary.best_fit == {}
    out = load_scan(tmp_path / "out")
    assert not out.valid.any()
    with pytest.raises(InputError, match="no valid point"):
        out.best_fit()


def test_scan_qa2_vector_valued_likelihood_is_a_clear_error(tmp_path, make_scan):
    from eftflow.errors import BackendError
    from eftflow.inference.scan.components import scan_function

    @scan_function(kind="likelihood", dependencies=["x", "y"], name="qa2_vector_like")
    def vector_like(inputs, options):
        return np.array([inputs["x"], inputs["y"]])

    spec = make_scan("random", {"n_points": 3})
    spec["components"] = {"like": {"function": "qa2_vector_like"}}
    with pytest.raises(BackendError) as err:
        run_scan(spec, output=tmp_path / "out", use_mpi=False)
    assert err.value.field == "components.like" and "shape (2,)" in str(err.value)
