"""Error propagation against gvar's conventions and exact answers (partial errors of correlated
inputs, numpy arrays on the left of an operator, tiny relative errors, error rounding)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eftflow.inference import uncertainties as gv


def test_uncertainties_qa2_partial_sdev_includes_correlated_primaries():
    # gvar.partialvar: "If args[i] is correlated with other GVars, the variance coming from
    # these is included in the result as well" (one step through the covariance)
    x = gv.gvar([1.0, 2.0, 3.0], [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    f = x[0] + x[1] + x[2]
    assert f.var == pytest.approx(4.0)
    assert gv.partial_sdev(f, x[2]) ** 2 == pytest.approx(1.0)
    assert gv.partial_sdev(f, x[0]) ** 2 == pytest.approx(3.0)  # x0 and x1 are inseparable
    assert gv.partial_sdev(f, x[1]) ** 2 == pytest.approx(3.0)
    assert gv.partial_sdev(f, x[0], x[2]) ** 2 == pytest.approx(4.0)


def test_uncertainties_qa2_error_budget_of_member_of_correlated_vector():
    # numbers checked with gvar 13.1: the budget of b[0] equals that of the whole b
    a = gv.gvar(1.0, 0.1)
    b = gv.gvar([2.0, 3.0], [[0.04, 0.03], [0.03, 0.09]])
    c = gv.gvar(0.5, 0.05)
    f = a * b[0] + b[1] / c
    g = (a + c) * b[1]  # depends on b[1] only, which is 50 % correlated with b[0]
    budget = gv.error_budget({"f": f, "g": g}, {"a": a, "b0": b[0], "b": b, "c": c})
    assert budget["f"]["b0"] == pytest.approx(math.sqrt(0.52), rel=1e-12)
    assert budget["f"]["b0"] == pytest.approx(budget["f"]["b"], rel=1e-12)
    assert budget["g"]["b0"] == pytest.approx(0.45, rel=1e-12)  # not 0
    assert budget["g"]["b0"] == pytest.approx(budget["g"]["b"], rel=1e-12)
    assert budget["f"]["a"] == pytest.approx(0.2) and budget["f"]["c"] == pytest.approx(0.6)
    table = gv.fmt_errorbudget({"f": f, "g": g}, {"b0": b[0]})
    assert "9.01" in table and "10.00" in table


def test_uncertainties_qa2_independent_inputs_budget_unchanged():
    x, y = gv.gvar(1.0, 0.1), gv.gvar(2.0, 0.2)
    f = x * y
    assert gv.partial_sdev(f, x) == pytest.approx(0.2)
    assert gv.partial_sdev(f, y) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("op", "expected_mean", "expected_der"),
    [
        (lambda v, x: v * x, [2.0, -4.0], [1.0, -2.0]),
        (lambda v, x: v + x, [3.0, 0.0], [1.0, 1.0]),
        (lambda v, x: v - x, [-1.0, -4.0], [-1.0, -1.0]),
        (lambda v, x: v / x, [0.5, -1.0], [-0.25, 0.5]),
        (
            lambda v, x: np.array([3.0, 0.5]) ** x,
            [9.0, 0.25],
            [9 * math.log(3), 0.25 * math.log(0.5)],
        ),
    ],
)
def test_uncertainties_qa2_ndarray_on_the_left(op, expected_mean, expected_der):
    x = gv.gvar(2.0, 0.1)
    v = np.array([1.0, -2.0])
    out = op(v, x)
    assert isinstance(out, np.ndarray) and out.shape == (2,)
    np.testing.assert_allclose(gv.mean(out), expected_mean)
    np.testing.assert_allclose(gv.sdev(out), 0.1 * np.abs(expected_der), rtol=1e-12)
    # still correlated with x
    assert gv.evalcorr([out[0], x])[0, 1] == pytest.approx(np.sign(expected_der[0]))


@pytest.mark.parametrize("rel", [1e-10, 1e-12, 1e-14])
def test_uncertainties_qa2_propagate_tiny_relative_errors(rel):
    x = gv.gvar([125.7, 50.0], [125.7 * rel, 50.0 * rel])
    num = gv.propagate(lambda v: np.sqrt(v[0] ** 2 + v[1] ** 2), x)
    exact = np.sqrt(x[0] ** 2 + x[1] ** 2)
    assert num.sdev == pytest.approx(exact.sdev, rel=1e-6)
    assert num.sdev > 0


@pytest.mark.parametrize(
    ("m", "s", "text"),
    [
        (1.0, 0.0995, "1.00(10)"),
        (99.96, 0.0996, "99.96(10)"),
        (3.0, 9.96, "3(10)"),
        (135.2834, 0.3812, "135.28(38)"),
        (2.5, 1.5, "2.5(1.5)"),
        (-3.14159, 0.0021, "-3.1416(21)"),
    ],
)
def test_uncertainties_qa2_fmt_error_rounding_into_next_decade(m, s, text):
    assert gv.fmt(gv.gvar(m, s)) == text


def test_uncertainties_qa2_against_installed_gvar():
    G = pytest.importorskip("gvar")
    cov = [[0.04, 0.015, 0.0], [0.015, 0.09, -0.02], [0.0, -0.02, 0.25]]
    means = [1.3, 2.1, 0.7]
    funcs = [
        lambda x: x[0] * x[1] / x[2],
        lambda x: x[0] ** x[2] + 2.0 ** x[1],
        lambda x: np.exp(x[0] - x[1]) * np.log(x[1] / x[0]),
        lambda x: np.arctan2(x[0], x[1]) + np.tanh(x[2]) * np.sqrt(x[0]),
        lambda x: np.dot(np.array([1.0, -2.0, 3.0]), x) * x[1],
    ]
    a, b = G.gvar(means, cov), gv.gvar(np.array(means), np.array(cov))
    fa, fb = [f(a) for f in funcs], [f(b) for f in funcs]
    np.testing.assert_allclose(gv.mean(fb), [y.mean for y in fa], rtol=1e-12)
    np.testing.assert_allclose(gv.evalcov(fb), G.evalcov(fa), rtol=1e-10, atol=1e-14)
    for ya, yb in zip(fa, fb):
        for i in range(3):
            assert gv.partial_sdev(yb, b[i]) == pytest.approx(ya.partialsdev(a[i]), rel=1e-10)


def test_uncertainties_qa2_percent_budget_of_zero_mean_output_is_not_absolute():
    x, y = gv.gvar(1.0, 0.1), gv.gvar(1.0, 0.2)
    d = x - y  # mean 0: a percentage is infinite, not the absolute error
    budget = gv.error_budget({"d": d}, {"x": x, "none": []}, percent=True)["d"]
    assert budget["x"] == math.inf and budget["total"] == math.inf
    assert budget["none"] == 0.0
    absolute = gv.error_budget({"d": d}, {"x": x})["d"]
    assert absolute["x"] == pytest.approx(0.1)
    assert "0.10" not in gv.fmt_errorbudget({"d": d}, {"x": x})


def test_uncertainties_qa2_correlate_exact_and_bad_input():
    from eftflow.errors import InputError

    corr = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
    s = np.array([0.1, 0.2, 0.3])
    x = gv.correlate(gv.gvar([1.0, 2.0, 3.0], s), corr)
    np.testing.assert_allclose(gv.evalcov(x), s[:, None] * corr * s[None, :], rtol=1e-12)
    np.testing.assert_allclose(gv.mean(x), [1.0, 2.0, 3.0])
    d = gv.correlate({"a": gv.gvar(1.0, 0.1), "v": gv.gvar([2.0, 3.0], [0.2, 0.3])}, corr)
    assert set(d) == {"a", "v"} and d["v"].shape == (2,)
    assert gv.evalcorr(d)[0, 2] == pytest.approx(-0.2)
    with pytest.raises(InputError) as err:
        gv.correlate(x, np.eye(2))
    assert err.value.field == "corr"
    with pytest.raises(InputError):
        gv.correlate(x, 2 * corr)  # diagonal is not 1
    G = pytest.importorskip("gvar")
    ref = G.correlate(G.gvar([1.0, 2.0, 3.0], s), corr)
    np.testing.assert_allclose(gv.evalcov(x), G.evalcov(ref), rtol=1e-12)


def test_uncertainties_qa3_power_with_negative_base_is_a_clear_error():
    import math

    from eftflow.inference.uncertainties import gvar

    x, y = gvar(-2.0, 0.1), gvar(0.5, 0.1)
    with pytest.raises(ValueError, match="base >= 0"):
        x**y
    with pytest.raises(ValueError, match="base >= 0"):
        (-3.0) ** y
    z = gvar(0.0, 0.1) ** gvar(2.0, 0.1)  # base 0: value 0, no NaN derivative
    assert z.mean == 0.0 and math.isfinite(z.sdev)
    w = gvar(2.0, 0.1) ** gvar(3.0, 0.2)  # d/dx = 3·2² = 12, d/dy = 8 ln 2
    assert w.sdev == pytest.approx(math.hypot(12 * 0.1, 8 * math.log(2) * 0.2), rel=1e-12)
