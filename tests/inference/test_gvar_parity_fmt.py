"""Parity with the gvar library: the text of GVars (fmt, str, format specifications) and numpy's
binary ufuncs with a plain number or array as the first argument (arctan2, hypot, power, ...)."""

from __future__ import annotations

import math

import numpy as np
import pytest

G = pytest.importorskip("gvar")

from eftflow.inference import gvar_core as gc  # noqa: E402
from eftflow.inference.gvar_format import format_gvar  # noqa: E402

# (mean, sdev): 1e-12..1e15, both signs, errors far below and far above the mean, exact and
# rounding-edge errors, zero error, zero mean
FMT_CASES = [
    (1.0, 0.0995),
    (99.96, 0.0996),
    (3.0, 9.96),
    (135.2834, 0.3812),
    (2.5, 1.5),
    (-3.14159, 0.0021),
    (1.234e-7, 5e-9),
    (-1.234e-7, 5e-9),
    (12345678.0, 1234.0),
    (-12345678.0, 1234.0),
    (1e12, 3e10),
    (-1e12, 3e10),
    (1e15, 1.0),
    (1e15, 0.1),
    (-1e15, 2.5e13),
    (1.0e-12, 3.0e-14),
    (-4.56e-12, 7.8e-13),
    (1.0e-12, 1.0),
    (-1.0e-12, 1e-3),
    (-2e-12, 3e-10),
    (3.0, 1e-20),
    (5e-5, 1.0),
    (1e-6, 1.0),
    (123456.0, 7.0),
    (0.001234, 0.5),
    (12.3, 456.0),
    (-0.9, 1234.0),
    (0.5, 0.5),
    (-0.5, 0.5),
    (9.995, 0.00995),
    (0.0123, 0.00456),
    (-0.0123, 0.0456),
    (6.02214076e23 / 1e9, 1.2e4),
    (299792.458, 0.0),
    (1.5, 0.0),
    (-1.5e-12, 0.0),
    (1e15, 0.0),
    (1e20, 0.0),
    (0.0, 0.0),
    (0.0, 0.3),
    (0.0, 4.5e14),
    (7.0, 7.0),
    (9.99, 99.9),
    (314159.26535, 2.7182818e3),
    (-271.828, 31.4159),
    (0.1 + 0.2, 1e-16),
    (-8.8e14, 1.0e11),
    (4.2e-10, 4.2e-3),
]

NONFINITE = [
    (math.nan, 1.0),
    (math.inf, 1.0),
    (-math.inf, 1.0),
    (1.0, math.inf),
    (1.0, math.nan),
    (math.inf, math.inf),
    (math.nan, math.nan),
    (-math.inf, math.inf),
    (0.0, math.inf),
    (math.nan, 0.0),
    (math.inf, 0.0),
    (-math.inf, 0.0),
]

SPECS = ["", "#.1p", "#.3p", ".2p", "p", "P", ".3P", ".2e", "e", ".3f", "f", "g", ".3g", "#.2g"]
SPECS += ["+.2f", ">24", "*^30.2e", ".1%", ",.2f", "_g", " .4g", "n"]


def _ours(m: float, s: float) -> gc.GVar:
    """A GVar with any mean and error, nan and inf included (gvar() refuses those errors)."""
    return gc.GVar(m, np.array([s]), (gc._Block(np.array([[1.0]])),))


@pytest.mark.parametrize(("m", "s"), FMT_CASES)
def test_gvar_parity_fmt_and_str_match_gvar(m, s):
    ours, ref = gc.gvar(m, s), G.gvar(m, s)
    assert gc.fmt(ours) == G.fmt(ref)
    assert str(ours) == str(ref) == G.fmt(ref)
    assert f"{ours}" == f"{ref}"
    for n in (1, 3, 4):
        assert gc.fmt(ours, n) == format(ref, f"#.{n}p")


def test_gvar_parity_fmt_covers_the_asked_range():
    means = [abs(m) for m, _ in FMT_CASES if m]
    assert len(FMT_CASES) >= 40
    assert min(means) <= 1e-12 and max(means) >= 1e15
    assert any(m < 0 for m, _ in FMT_CASES) and any(s == 0 for _, s in FMT_CASES)
    assert any(s > 1e3 * abs(m) for m, s in FMT_CASES if m)
    assert any(0 < s < 1e-6 * abs(m) for m, s in FMT_CASES)
    texts = [gc.fmt(gc.gvar(m, s)) for m, s in FMT_CASES]
    assert any("e+" in t for t in texts) and any("e-" in t for t in texts)
    assert any(" ± " in t for t in texts)


@pytest.mark.parametrize(
    ("m", "s", "text"),
    [
        (1.234e-7, 5e-9, "1.234(50)e-07"),
        (12345678.0, 1234.0, "1.23457(12)e+07"),
        (1e12, 3e10, "1.000(30)e+12"),
        (-2e-12, 3e-10, "-0.02(3.00)e-10"),
        (12.3, 456.0, "0.1(4.6)e+02"),
        (-0.9, 1234.0, "-0.9(1234.0)"),
        (1e15, 0.1, "1e+15 ± 0.10"),
        (3.0, 1e-20, "3 ± 1.0e-20"),
        (1.5, 0.0, "1.5(0)"),
        (1e20, 0.0, "1(0)e+20"),
        (0.0, 0.0, "0 ± 0"),
        (0.0, 0.3, "0 ± 0.30"),
        (135.2834, 0.3812, "135.28(38)"),
    ],
)
def test_gvar_parity_fmt_documented_strings(m, s, text):
    assert gc.fmt(gc.gvar(m, s)) == text == G.fmt(G.gvar(m, s))


@pytest.mark.parametrize(("m", "s"), NONFINITE)
def test_gvar_parity_fmt_nonfinite(m, s):
    ours, ref = _ours(m, s), G.gvar(m, s)
    assert str(ours) == str(ref)
    for spec in ("#.3p", ".2e", ".3f", "g", ".1%"):
        assert format(ours, spec) == format(ref, spec)
    if m == -math.inf and 0 < s < math.inf:  # gvar's 'P' cannot take -inf either
        with pytest.raises(OverflowError):
            format(ours, "P")
    else:
        assert format(ours, "P") == format(ref, "P")


@pytest.mark.parametrize("spec", SPECS)
def test_gvar_parity_format_specifications(spec):
    for m, s in FMT_CASES[::3]:
        assert format(gc.gvar(m, s), spec) == format(G.gvar(m, s), spec), (m, s)


def test_gvar_parity_fmt_random_sweep():
    rng = np.random.default_rng(20261124)
    specs = ["", "#.1p", "#.3p", "P", ".2e", ".3g", ".1%"]
    for _ in range(400):
        m = float(rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-13, 16))
        s = float(10 ** rng.uniform(-13, 16))
        if rng.random() < 0.3:
            s = float(f"{s:.2g}")  # exact two-digit errors: rounding ties
        ours, ref = gc.gvar(m, s), G.gvar(m, s)
        for spec in specs:
            assert format(ours, spec) == format(ref, spec), (m, s, spec)


def test_gvar_parity_fmt_of_derived_and_structured():
    a = G.gvar([1.3, -2.1e-8], [[0.04, 1e-10], [1e-10, 9e-16]])
    b = gc.gvar(np.array([1.3, -2.1e-8]), np.array([[0.04, 1e-10], [1e-10, 9e-16]]))
    assert gc.fmt(b[0] * b[1]) == G.fmt(a[0] * a[1])
    assert gc.fmt(b[0] / b[1]) == G.fmt(a[0] / a[1])
    arr = gc.fmt(b)
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)
    assert arr.tolist() == G.fmt(a).tolist()
    d = gc.fmt({"x": b[0], "v": b})
    assert d["x"] == G.fmt(a[0]) and d["v"].tolist() == arr.tolist()
    assert gc.fmt(2.5) == "2.5(0)"


def test_gvar_parity_format_bad_spec():
    with pytest.raises(ValueError, match="invalid format specifier"):
        format(gc.gvar(1.0, 0.1), "q")
    with pytest.raises(ValueError, match="invalid format specifier"):
        format_gvar(1.0, 0.1, ".2x")


# ---------------------------------------------------------------------------------------------
# binary ufuncs with a plain number / array first
# ---------------------------------------------------------------------------------------------

QUADRANTS = [(1.0, 2.0), (1.0, -2.0), (-1.0, -2.0), (-1.0, 2.0), (0.0, -2.0), (1.5, 0.0)]
QUADRANTS += [(-1.5, 0.0), (3e-3, 7e2)]
COV = [[0.04, 0.015], [0.015, 0.09]]


def _deriv(r: gc.GVar, prim: np.ndarray) -> np.ndarray:
    """Derivatives of ``r`` with respect to the primaries of the vector ``prim`` (one block)."""
    return gc._remap(r.der, r.blocks, prim[0].blocks)


def _check(ours, ref, prim, ref_prim):
    ours, ref = np.atleast_1d(ours), np.atleast_1d(ref)
    assert ours.shape == ref.shape
    for a, b in zip(ours.ravel(), ref.ravel()):
        assert isinstance(a, gc.GVar)
        assert a.mean == pytest.approx(b.mean, rel=1e-14, abs=1e-15)
        np.testing.assert_allclose(_deriv(a, prim), b.deriv(ref_prim), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        gc.evalcov([*ours.ravel(), *prim]),
        G.evalcov([*ref.ravel(), *ref_prim]),
        rtol=1e-11,
        atol=1e-15,
    )


@pytest.mark.parametrize(("ym", "xm"), QUADRANTS)
def test_gvar_parity_arctan2_correlated_gvars(ym, xm):
    prim, ref_prim = gc.gvar(np.array([ym, xm]), np.array(COV)), G.gvar([ym, xm], COV)
    y, x = prim
    ry, rx = ref_prim
    _check(np.arctan2(y, x), G.arctan2(ry, rx), prim, ref_prim)
    _check(np.arctan2(y + 0.25 * x, x), G.arctan2(ry + 0.25 * rx, rx), prim, ref_prim)
    _check(gc.arctan2(y, x), G.arctan2(ry, rx), prim, ref_prim)
    _check(y.arctan2(x), ry.arctan2(rx), prim, ref_prim)


@pytest.mark.parametrize(("ym", "xm"), QUADRANTS)
def test_gvar_parity_arctan2_number_first_and_second(ym, xm):
    prim, ref_prim = gc.gvar(np.array([ym, xm]), np.array(COV)), G.gvar([ym, xm], COV)
    one = G.gvar(-0.7, 0.0)  # gvar cannot take a float first: a constant GVar stands in
    # a GVar second, a plain number (Python or numpy) first
    for c in (-0.7, np.float64(-0.7)):
        out = np.arctan2(c, prim[1])
        assert isinstance(out, gc.GVar)
        _check(out, G.arctan2(one, ref_prim[1]), prim, ref_prim)
    _check(np.arctan2(prim[0], -0.7), G.arctan2(ref_prim[0], -0.7), prim, ref_prim)
    if ym != 0.0:  # gvar's own arctan2 divides by y when x is 0
        _check(np.arctan2(-0.7, prim[0]), G.arctan2(one, ref_prim[0]), prim, ref_prim)


def test_gvar_parity_arctan2_arrays():
    prim, ref_prim = gc.gvar(np.array([1.0, -2.0]), np.array(COV)), G.gvar([1.0, -2.0], COV)
    c = np.array([[0.5, -0.5], [-3.0, 3.0]])
    ref_c = G.gvar(c, np.zeros_like(c))
    # float array first, GVar second (and the reverse); broadcasting
    _check(np.arctan2(c, prim[1]), G.arctan2(ref_c, ref_prim[1]), prim, ref_prim)
    _check(np.arctan2(prim[0], c), G.arctan2(ref_prim[0], c), prim, ref_prim)
    # object arrays of GVars
    _check(np.arctan2(prim, prim[::-1]), G.arctan2(ref_prim, ref_prim[::-1]), prim, ref_prim)
    _check(np.arctan2(prim, 2.0), G.arctan2(ref_prim, 2.0), prim, ref_prim)
    _check(np.arctan2(prim[1], prim), G.arctan2(ref_prim[1], ref_prim), prim, ref_prim)
    # a float array first and an object array second: numpy asks the float for an arctan2
    # method (gvar fails the same way); the module's arctan2 takes every mix
    with pytest.raises((AttributeError, TypeError)):
        np.arctan2(c[0], prim)
    _check(gc.arctan2(c[0], prim), G.arctan2(ref_c[0], ref_prim), prim, ref_prim)
    _check(gc.arctan2(c, prim), G.arctan2(ref_c, ref_prim), prim, ref_prim)
    assert gc.arctan2(1.0, 2.0) == math.atan2(1.0, 2.0)
    mixed = gc.arctan2(np.array([1.0, prim[0]], dtype=object), 2.0)
    assert mixed[0] == math.atan2(1.0, 2.0) and isinstance(mixed[1], gc.GVar)
    with pytest.raises(TypeError, match="GVars and numbers"):
        gc.arctan2(prim[0], "x")


BINARY = [
    ("power", lambda c, x: np.power(c, x), lambda c, x: np.power(c, x)),
    ("**", lambda c, x: c**x, lambda c, x: c**x),
    ("add", lambda c, x: np.add(c, x), lambda c, x: c + x),
    ("subtract", lambda c, x: np.subtract(c, x), lambda c, x: c - x),
    ("multiply", lambda c, x: np.multiply(c, x), lambda c, x: c * x),
    ("divide", lambda c, x: np.divide(c, x), lambda c, x: c / x),
    ("hypot", lambda c, x: np.hypot(c, x), lambda c, x: G.sqrt(c**2 + x**2)),
    ("hypot2", lambda c, x: np.hypot(x, c), lambda c, x: G.sqrt(x**2 + c**2)),
    ("arctan2", lambda c, x: np.arctan2(c, x), lambda c, x: G.arctan2(G.gvar(c, 0 * c), x)),
]


@pytest.mark.parametrize(("name", "ours_op", "ref_op"), BINARY, ids=[b[0] for b in BINARY])
def test_gvar_parity_binary_ufuncs_number_first(name, ours_op, ref_op):
    prim, ref_prim = gc.gvar(np.array([1.7, -0.4]), np.array(COV)), G.gvar([1.7, -0.4], COV)
    x = prim[0] * prim[1] + 2.0  # a correlated, derived GVar
    rx = ref_prim[0] * ref_prim[1] + 2.0
    for c in (2.5, np.float64(2.5), 3):
        out = ours_op(c, x)
        assert isinstance(out, gc.GVar), name
        _check(out, ref_op(float(c), rx), prim, ref_prim)
    arr = np.array([0.5, 2.5, 4.0])
    out = ours_op(arr, x)
    assert isinstance(out, np.ndarray) and out.dtype == object and out.shape == (3,)
    _check(out, ref_op(arr, rx), prim, ref_prim)


def test_gvar_parity_hypot_of_gvar_arrays():
    prim, ref_prim = gc.gvar(np.array([1.7, -0.4]), np.array(COV)), G.gvar([1.7, -0.4], COV)
    _check(np.hypot(prim, prim[::-1]), G.sqrt(ref_prim**2 + ref_prim[::-1] ** 2), prim, ref_prim)
    assert gc.hypot(3.0, 4.0) == 5.0
    zero = gc.gvar(0.0, 0.1)
    with pytest.raises(ZeroDivisionError, match="no derivative"):
        np.arctan2(zero, 0.0)
    with pytest.raises(ZeroDivisionError, match="no derivative"):
        np.hypot(0.0, zero)


def test_gvar_parity_other_ufuncs_unchanged():
    prim, ref_prim = gc.gvar(np.array([1.7, 0.4]), np.array(COV)), G.gvar([1.7, 0.4], COV)
    x, rx = prim[0], ref_prim[0]
    _check(np.exp(x), G.exp(rx), prim, ref_prim)
    _check(np.sqrt(x * prim[1]), G.sqrt(rx * ref_prim[1]), prim, ref_prim)
    _check(np.add.outer(x, np.array([1.0, 2.0])), rx + np.array([1.0, 2.0]), prim, ref_prim)
    _check(np.maximum(0.0, x), rx, prim, ref_prim)
    assert bool(np.less(1.0, x)) and not bool(np.less(x, 1.0))
    _check(np.sum(prim), ref_prim.sum(), prim, ref_prim)
