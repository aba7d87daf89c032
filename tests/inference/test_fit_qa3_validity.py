"""A failed or ill-defined fit is reported as failed, never as a result; MINOS at a bound."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from eftflow.cli import main
from eftflow.errors import BackendError
from eftflow.inference.fit import Fit, Parameter
from eftflow.inference.specs import build_fit


def _rosenbrock(p):
    return float(np.sum(100.0 * (p[1:] - p[:-1] ** 2) ** 2 + (1.0 - p[:-1]) ** 2))


@pytest.mark.parametrize(
    ("backend", "options"), [("minuit", {"ncall": 30}), ("scipy", {"maxiter": 3})]
)
def test_fit_qa3_minos_and_contour_refuse_a_failed_minimum(backend, options):
    fit = Fit(_rosenbrock, [Parameter(f"x{i}", -1.0) for i in range(3)], backend=backend)
    opt = fit.optimize(**options)
    assert not opt.success
    # before: iminuit's bare RuntimeError (minuit) or an interval with success=True (scipy)
    with pytest.raises(BackendError, match="valid minimum"):
        fit.confidence("x0")
    with pytest.raises(BackendError, match="valid minimum"):
        fit.minos_contour("x0", "x1", numpoints=4)
    prof = fit.minos_profile("x0", nvalues=3)
    assert not prof.success.any()  # the profile of a non-minimum is flagged, point by point


def test_fit_qa3_minuit_invalid_message_is_words():
    fit = Fit(lambda p: (p[0] - 1.0) ** 2, [Parameter("a", 0.0), Parameter("b", 0.0)])
    opt = fit.optimize()  # b is flat: Hesse fails, the minimum is invalid
    assert not opt.success
    assert "Hesse failed" in opt.message
    assert "┌" not in opt.message  # before: the first line of iminuit's table


@pytest.mark.parametrize("backend", ["minuit", "scipy"])
def test_fit_qa3_poisson_minos_at_the_physical_bound(backend):
    """n = 1 on b = 2: mu_hat = -1 is cut at the bound 0; the interval is [0, mu_up] with
    mu_up + b - n ln(mu_up + b) - (b - n ln b) = 1/2 (Minuit's MINOS reported a lower edge
    0.73 below the bound and success=False)."""
    n, b = 1.0, 2.0

    def nll(p):
        return p[0] + b - n * math.log(p[0] + b)

    fit = Fit(nll, [Parameter("mu", 1.0, lower=0.0)], kind="nll", backend=backend)
    fit.optimize()
    ci = fit.confidence("mu")
    exact = brentq(lambda m: nll([m]) - nll([0.0]) - 0.5, 0.0, 10.0)
    assert ci.success
    assert ci.interval[0] >= 0.0
    assert ci.errn == pytest.approx(0.0, abs=1e-6)
    assert ci.at_lower_limit
    assert ci.value + ci.errp == pytest.approx(exact, rel=1e-6)


def test_fit_qa3_flat_direction_has_no_minos_interval():
    """A parameter the objective does not depend on: before, MINOS gave +-52428.8 with
    success=True."""

    def chi2(p):
        return (p[0] - 1.0) ** 2

    fit = Fit(chi2, [Parameter("a", 0.0), Parameter("b", 0.0)], backend="scipy")
    assert fit.optimize().success
    ci = fit.confidence("b")
    assert not ci.success
    assert math.isinf(ci.errn) and math.isinf(ci.errp)
    assert fit.confidence("a").success


def test_fit_qa3_gaussian_spec_overflow_is_a_large_value_not_a_warning():
    spec = {
        "kind": "gaussian",
        "parameters": {"a": 0.0, "b": 0.0},
        "gaussian": {
            "mean": [1.0, 2.0],
            "errors": [1.0, 1.0],
            "prediction": ["a + 10*b**3", "exp(3*b)"],
        },
    }
    fit = build_fit(spec)
    assert fit.objective(np.array([0.0, 400.0])) >= 1e29  # before: RuntimeWarning (an error)


_FLAT = """\
kind: gaussian
parameters: {a: 0.0, b: 0.0}
gaussian: {mean: [1.0], errors: [1.0], prediction: ["a"]}
"""


@pytest.mark.parametrize("backend", ["minuit", "scipy"])
def test_fit_qa3_cli_failed_fit_writes_nothing(tmp_path, capsys, backend):
    """b does not enter the likelihood: before, minuit ended in a traceback and scipy wrote a
    result with success=true, NaN errors and a MINOS interval of b."""
    spec = tmp_path / "flat.yaml"
    spec.write_text(_FLAT + f"backend: {backend}\n")
    out = tmp_path / "out" / "fit.json"
    rc = main(["fit", str(spec), "-o", str(out), "--plot", str(tmp_path / "plots")])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(spec) in err and "parameters" in err
    assert not out.exists() and not (tmp_path / "plots").exists()


def test_fit_qa3_cli_output_says_what_it_is(tmp_path):
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "kind: counting\nparameters: {mu: {value: 1.0, lower: 0}}\n"
        "counting: {observed: 12, signal: 5, background: 10}\nsigma: 2\nprofiles: [mu]\n"
    )
    out = tmp_path / "fit.json"
    assert main(["fit", str(spec), "-o", str(out), "--plot", str(tmp_path / "plots")]) == 0
    res = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert "deviance" in res["objective"]
    assert res["errordef"] == 1.0
    assert res["minos_level"] == {"sigma": 2.0, "cl": None, "up": 4.0}
    assert res["minos"]["mu"]["up"] == pytest.approx(4.0)
    # -2 ln L of Poisson(12 | 5 mu + 10) rises by 4 at the MINOS edges
    minos = res["minos"]["mu"]
    lo, hi = minos["value"] - minos["errn"], minos["value"] + minos["errp"]

    def dev(m):
        lam = 5 * m + 10
        return 2 * (lam - 12 + 12 * math.log(12 / lam))

    assert dev(hi) - dev(0.4) == pytest.approx(4.0, abs=1e-3)  # Migrad tol 0.01
    assert dev(0.0) - dev(0.4) < 4.0  # so the lower edge is the bound
    assert lo == pytest.approx(0.0, abs=1e-6) and minos["at_lower_limit"] and minos["success"]
    assert (tmp_path / "plots" / "profile_mu.png").exists()
