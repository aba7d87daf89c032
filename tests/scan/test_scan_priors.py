"""Prior transforms: distributions (KS), moments, hierarchical and translated parameters."""

import numpy as np
import pytest
from scipy import stats

from eftflow.inference.scan.config import load_scan_config
from eftflow.inference.scan.model import ParameterModel
from eftflow.inference.scan.priors import transform

U = np.random.default_rng(1).random(20000)


@pytest.mark.parametrize(
    ("name", "hyper", "dist"),
    [
        ("flat", {"range": (-2.0, 3.0)}, stats.uniform(-2, 5)),
        ("log", {"range": (1e-3, 10.0)}, stats.loguniform(1e-3, 10.0)),
        ("gaussian", {"mean": 1.5, "sigma": 0.3}, stats.norm(1.5, 0.3)),
        ("lognormal", {"mean": 0.2, "sigma": 0.5}, stats.lognorm(0.5, scale=np.exp(0.2))),
        ("gaussian", {"mean": 0.0, "sigma": 1.0, "range": (-1.0, 2.0)}, stats.truncnorm(-1, 2)),
    ],
)
def test_prior_transform_distribution(name, hyper, dist):
    x = transform(name, U, **hyper)
    assert stats.kstest(x, dist.cdf).pvalue > 1e-3
    assert x.mean() == pytest.approx(dist.mean(), abs=5 * dist.std() / np.sqrt(len(x)))


def test_transform_is_exact_inverse_cdf():
    u = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(
        transform("gaussian", u, mean=1.0, sigma=2.0), stats.norm(1, 2).ppf(u)
    )
    np.testing.assert_allclose(transform("log", u, range=(1.0, 100.0)), [10**0.2, 10.0, 10**1.8])


def _model(params: dict) -> ParameterModel:
    spec = load_scan_config(
        {
            "models": params,
            "components": {"l": {"function": "loglike_expression", "options": {"expr": "0"}}},
        }
    )
    return ParameterModel.from_spec(spec)


def test_hierarchical_and_translated_parameters():
    model = _model(
        {
            "Parent": {
                "parameters": {
                    "tau": {"prior": "log", "range": [0.1, 1.0]},
                    "c": {"prior": "gaussian", "mean": 0.0, "sigma": "tau"},
                    "k": {"prior": "fixed", "value": 2.0},
                }
            },
            "Child": {
                "parent": "Parent",
                "parameters": {"d": {"prior": "derived", "expr": "k*Parent.c + exp(0)"}},
            },
        }
    )
    assert model.names == ["Parent::tau", "Parent::c"]
    u = np.random.default_rng(3).random((20000, 2))
    v = model.transform(u)
    z = v["Parent::c"] / v["Parent::tau"]  # c | tau ~ N(0, tau)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    np.testing.assert_allclose(v["Child::d"], 2.0 * v["Parent::c"] + 1.0)
    np.testing.assert_array_equal(v["Parent::k"], 2.0)
