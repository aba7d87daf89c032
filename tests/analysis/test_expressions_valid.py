"""Valid expressions compared with hand-written numpy on a small batch of events."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.analysis.expressions import Expression
from eftflow.analysis.objects import Collection, EventObjects
from eftflow.errors import ExpressionError

RNG = np.random.default_rng(7)
N = 200


def _coll(counts, *, extra=None):
    counts = np.asarray(counts)
    k = int(counts.sum())
    fields = {
        "pt": RNG.uniform(10, 100, k),
        "eta": RNG.uniform(-2.5, 2.5, k),
        "phi": RNG.uniform(-np.pi, np.pi, k),
        "m": np.full(k, 0.1),
        "charge": RNG.choice([-1.0, 1.0], k),
    }
    fields.update({n: f(k) for n, f in (extra or {}).items()})
    return Collection.from_fields(counts, **fields).sorted_by("pt")


@pytest.fixture(scope="module")
def events():
    lc = RNG.integers(0, 4, N)
    jc = RNG.integers(0, 5, N)
    colls = {
        "l": _coll(lc),
        "j": _coll(jc, extra={"btag": lambda k: RNG.integers(0, 2, k).astype(float)}),
        "a": _coll(np.zeros(N, int)),
        "met": _coll(np.ones(N, int)),
    }
    return EventObjects(N, colls)


def dense(coll: Collection, field: str, i: int):
    """Field of object i per event (NaN where missing), the slow obvious way."""
    out = np.full(coll.n_events, np.nan)
    for k in range(coll.n_events):
        n = coll.offsets[k + 1] - coll.offsets[k]
        idx = i if i >= 0 else n + i
        if 0 <= idx < n:
            out[k] = coll.fields[field][coll.offsets[k] + idx]
    return out


def four(coll, i):
    pt, eta, phi, m = (dense(coll, f, i) for f in ("pt", "eta", "phi", "m"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)


def per_event(coll, field, fn):
    return np.array(
        [
            fn(coll.fields[field][coll.offsets[k] : coll.offsets[k + 1]])
            for k in range(coll.n_events)
        ]
    )


def _mll(ev):
    a, b = four(ev["l"], 0), four(ev["l"], 1)
    s = [x + y for x, y in zip(a, b)]
    return np.sqrt(np.maximum(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2, 0))


def _dr(ev):
    d_eta = dense(ev["j"], "eta", 0) - dense(ev["j"], "eta", 1)
    d_phi = np.abs(dense(ev["j"], "phi", 0) - dense(ev["j"], "phi", 1))
    d_phi = np.where(d_phi > np.pi, 2 * np.pi - d_phi, d_phi)
    return np.sqrt(d_eta**2 + d_phi**2)


def _cos_cs(ev, i=0, k=1):
    """Collins–Soper cos θ* written out: p± = (E ± p_z)/√2, ℓ⁻ = the first unless it is positive."""
    a, b = four(ev["l"], i), four(ev["l"], k)
    swap = dense(ev["l"], "charge", i) > 0
    lm = [np.where(swap, y, x) for x, y in zip(a, b)]
    lp = [np.where(swap, x, y) for x, y in zip(a, b)]
    tot = [x + y for x, y in zip(lm, lp)]
    m2 = tot[3] ** 2 - tot[0] ** 2 - tot[1] ** 2 - tot[2] ** 2
    pt2 = tot[0] ** 2 + tot[1] ** 2

    def pm(v):
        return (v[3] + v[2]) / np.sqrt(2), (v[3] - v[2]) / np.sqrt(2)

    (p1p, p1m), (p2p, p2m) = pm(lm), pm(lp)
    c = 2 * (p1p * p2m - p1m * p2p) / (np.sqrt(m2) * np.sqrt(m2 + pt2))
    return np.sign(tot[2]) * c


def _sum4(*vs):
    return [sum(x) for x in zip(*vs)]


def _visible(ev, colls=("l", "a", "j")):
    out = np.zeros((4, N))
    for c in colls:
        col = ev[c]
        evt = col.event_index()
        f = col.fields
        comps = (
            f["pt"] * np.cos(f["phi"]),
            f["pt"] * np.sin(f["phi"]),
            f["pt"] * np.sinh(f["eta"]),
            f["e"],
        )
        for k, v in enumerate(comps):
            out[k] += np.bincount(evt, weights=v, minlength=N)
    return out


def _m(v):
    return np.sqrt(np.maximum(v[3] ** 2 - v[0] ** 2 - v[1] ** 2 - v[2] ** 2, 0))


def _eta(v):
    pt = np.hypot(v[0], v[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pt == 0, 0.0, np.arcsinh(v[2] / pt))


CASES = {
    "cos_theta_cs(l[0], l[1])": _cos_cs,
    "cos_theta_cs(l[1], l[0])": lambda ev: _cos_cs(ev, 1, 0),
    "(l[0] - l[1]).m": lambda ev: _m([x - y for x, y in zip(four(ev["l"], 0), four(ev["l"], 1))]),
    "(l[0] + l[1] + j[0]).eta": lambda ev: _eta(
        _sum4(four(ev["l"], 0), four(ev["l"], 1), four(ev["j"], 0))
    ),
    "(l[0] + l[1]).phi": lambda ev: np.arctan2(
        *[x + y for x, y in zip(four(ev["l"], 0)[1::-1], four(ev["l"], 1)[1::-1])]
    ),
    "visible.m": lambda ev: _m(_visible(ev)),
    "visible.e": lambda ev: _visible(ev)[3],
    "visible.eta": lambda ev: _eta(_visible(ev)),
    "all.pt": lambda ev: np.hypot(*_visible(ev, ("l", "a", "j", "met"))[:2]),
    "(l[0] + l[1]).m + visible.m": lambda ev: _mll(ev) + _m(_visible(ev)),
    "l[0].pt": lambda ev: dense(ev["l"], "pt", 0),
    "l[-1].eta": lambda ev: dense(ev["l"], "eta", -1),
    "abs(l[0].eta - l[1].eta)": lambda ev: np.abs(
        dense(ev["l"], "eta", 0) - dense(ev["l"], "eta", 1)
    ),
    "(l[0] + l[1]).m": _mll,
    "(l[0] + l[1]).pt": lambda ev: np.hypot(
        *[x + y for x, y in zip(four(ev["l"], 0)[:2], four(ev["l"], 1)[:2])]
    ),
    "met.pt": lambda ev: dense(ev["met"], "pt", 0),
    "deltaR(j[0], j[1])": _dr,
    "sqrt(l[0].pt * j[0].pt)": lambda ev: np.sqrt(
        dense(ev["l"], "pt", 0) * dense(ev["j"], "pt", 0)
    ),
    "cos(l[0].phi) ** 2 + 1": lambda ev: np.cos(dense(ev["l"], "phi", 0)) ** 2 + 1,
    "min(l[0].pt, j[0].pt)": lambda ev: np.minimum(
        dense(ev["l"], "pt", 0), dense(ev["j"], "pt", 0)
    ),
    "max(j.pt)": lambda ev: per_event(ev["j"], "pt", lambda a: a.max() if len(a) else np.nan),
    "sum(j.pt)": lambda ev: per_event(ev["j"], "pt", np.sum),
    "sum(j.btag)": lambda ev: per_event(ev["j"], "btag", np.sum),
    "sum(j.pt * (abs(j.eta) < 1))": lambda ev: np.array(
        [
            np.sum(p[np.abs(e) < 1])
            for p, e in zip(
                *(np.split(ev["j"].fields[f], ev["j"].offsets[1:-1]) for f in ("pt", "eta"))
            )
        ]
    ),
    "len(j)": lambda ev: np.diff(ev["j"].offsets).astype(float),
    "n_j + n_l": lambda ev: np.diff(ev["j"].offsets) + np.diff(ev["l"].offsets).astype(float),
    "l[0].pt > 50 and n_j >= 2": lambda ev: np.where(
        np.isnan(dense(ev["l"], "pt", 0)),
        np.nan,
        (dense(ev["l"], "pt", 0) > 50) & (np.diff(ev["j"].offsets) >= 2),
    ),
    "20 < j[0].pt < 60": lambda ev: np.where(
        np.isnan(dense(ev["j"], "pt", 0)),
        np.nan,
        (dense(ev["j"], "pt", 0) > 20) & (dense(ev["j"], "pt", 0) < 60),
    ),
    "not n_j > 1": lambda ev: (np.diff(ev["j"].offsets) <= 1).astype(float),
    "j[0].pt if n_j > 0 else -1": lambda ev: np.where(
        np.diff(ev["j"].offsets) > 0, dense(ev["j"], "pt", 0), -1
    ),
    "mt(l[0], met)": lambda ev: np.sqrt(
        2
        * dense(ev["l"], "pt", 0)
        * dense(ev["met"], "pt", 0)
        * (1 - np.cos(dense(ev["l"], "phi", 0) - dense(ev["met"], "phi", 0)))
    ),
    "l[0].px / l[0].pt": lambda ev: np.cos(dense(ev["l"], "phi", 0)),
    "pi * 2": lambda ev: np.full(N, 2 * np.pi),
}


@pytest.mark.parametrize("text", list(CASES))
def test_expression_matches_numpy(events, text):
    expected = np.asarray(CASES[text](events), dtype=float)
    got = Expression(text).evaluate_array(events)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-9, equal_nan=True)


def test_missing_objects_get_the_default(events):
    got = Expression("l[2].pt").evaluate_array(events, default=-99.0)
    n_l = np.diff(events["l"].offsets)
    assert np.all(got[n_l < 3] == -99.0)
    assert np.all(got[n_l >= 3] > 0)


def test_division_by_zero_is_missing(events):
    got = Expression("1 / (n_j - n_j)").evaluate_array(events, default=5.0)
    assert np.all(got == 5.0)


def test_visible_sum_is_sum_of_collections(events):
    px = sum(
        np.bincount(
            events[c].event_index(),
            weights=events[c].fields["pt"] * np.cos(events[c].fields["phi"]),
            minlength=N,
        )
        for c in ("l", "a", "j")
    )
    np.testing.assert_allclose(Expression("visible.px").evaluate_array(events), px, atol=1e-9)


def test_registered_functions(events):
    from eftflow.analysis.functions import register_function, unregister_function

    @register_function("pt_ratio", kind="objects")
    def pt_ratio(a, b):
        return a.pt / b.pt

    @register_function("n_objects", kind="event")
    def n_objects(ev):
        return np.diff(ev["l"].offsets) + np.diff(ev["j"].offsets)

    @register_function("double")
    def double(x):
        return 2 * x

    try:
        r = Expression("pt_ratio(l[0], j[0])").evaluate_array(events)
        np.testing.assert_allclose(
            r, dense(events["l"], "pt", 0) / dense(events["j"], "pt", 0), equal_nan=True
        )
        assert np.array_equal(
            Expression("n_objects()").evaluate_array(events), n_objects(events).astype(float)
        )
        np.testing.assert_allclose(
            Expression("double(met.pt)").evaluate_array(events), 2 * dense(events["met"], "pt", 0)
        )
    finally:
        for name in ("pt_ratio", "n_objects", "double"):
            unregister_function(name)


def test_integer_power_towers_are_float_and_bounded(events):
    # numbers are floats: 9**9**9**9 is inf at once (Python integers would compute for ever),
    # hence missing; an integer literal beyond the float range is refused at compile time
    got = Expression("9**9**9**9 + l[0].pt").evaluate_array(events, default=-1.0)
    assert np.all(got == -1.0)
    np.testing.assert_allclose(Expression("2**3 + 10**20").evaluate_array(events), 1e20 + 8)
    with pytest.raises(ExpressionError, match="too large"):
        Expression("1" + "0" * 400)
