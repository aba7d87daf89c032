"""UP values (Gemini's table) and bad inputs of the fit front end."""

from __future__ import annotations

import math

import pytest

from eftflow.errors import EftflowError, InputError
from eftflow.inference.fit import Fit, Parameter, Parameters, format_up_table, up, up_table


@pytest.mark.parametrize(
    ("k", "sigma", "value"),
    [
        (1, 1, 1.0),
        (1, 2, 4.0),
        (1, 3, 9.0),
        (2, 1, 2.2957),
        (2, 2, 6.1801),
        (2, 3, 11.8292),
        (3, 1, 3.5267),
        (3, 2, 8.0249),
        (3, 3, 14.1564),
    ],
)
def test_fit_up_table_values(k, sigma, value):
    assert up(sigma=sigma, n_params=k) == pytest.approx(value, abs=1e-4)
    assert up(sigma=sigma, n_params=k, kind="nll") == pytest.approx(value / 2, abs=1e-4)
    assert up_table(max_params=3)[k][float(sigma)] == pytest.approx(value, abs=1e-4)


def test_fit_up_from_coverage():
    assert up(cl=0.95) == pytest.approx(3.841459, abs=1e-6)
    assert up(cl=0.90, n_params=2) == pytest.approx(4.605170, abs=1e-6)
    assert up(cl=0.6827, n_params=1, kind="-2lnL") == pytest.approx(1.0, abs=1e-3)
    assert "2.2958" in format_up_table() or "2.2957" in format_up_table()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cl": 1.5}, "coverage"),
        ({"sigma": -1}, "sigma"),
        ({"n_params": 0}, "n_params"),
        ({"kind": "chi3"}, "unknown objective kind"),
        ({"sigma": 1, "cl": 0.5}, "either"),
    ],
)
def test_fit_up_bad_inputs(kwargs, match):
    with pytest.raises(InputError, match=match):
        up(**kwargs)


def test_fit_bad_parameters_give_clear_errors():
    with pytest.raises(InputError, match="outside the bounds") as err:
        Parameter("a", 5.0, lower=0.0, upper=1.0)
    assert err.value.field == "parameters.a"
    with pytest.raises(InputError, match="bad bounds"):
        Parameter("a", 0.5, lower=1.0, upper=0.0)
    with pytest.raises(InputError, match="duplicate"):
        Parameters([Parameter("a", 0.0), Parameter("a", 1.0)])
    with pytest.raises(InputError, match="scale"):
        Parameter("a", 0.0, scale=-1.0)


def test_fit_unknown_names_and_nonfinite_start():
    fit = Fit(lambda p: (p[0] - 1) ** 2, Parameters({"a": 0.0}))
    with pytest.raises(InputError, match="unknown parameter 'b'"):
        fit.confidence("b")
    with pytest.raises(InputError, match="unknown fit backend"):
        Fit(lambda p: p[0] ** 2, Parameters({"a": 0.0}), backend="nag")
    bad = Fit(lambda p: math.inf if p[0] <= 0 else math.log(p[0]), [Parameter("a", 0.0)])
    with pytest.raises(InputError, match="not finite") as err:
        bad.optimize()
    assert isinstance(err.value, EftflowError) and err.value.field == "parameters"
    fixed = Fit(
        lambda p: (p[0] - 1) ** 2 + p[1] ** 2,
        [Parameter("a", 0.0), Parameter("b", 0.0, fixed=True)],
    )
    with pytest.raises(InputError, match="fixed"):
        fixed.confidence("b")
    raising = Fit(lambda p: math.log(p[0]), [Parameter("a", 0.0, scale=0.1)])
    with pytest.raises(InputError, match="failed at the starting values.*math domain error"):
        raising.optimize()
