"""The fixed-width decoder gives exactly Python's float()/int() on many random and edge values;
the gzip reader gives the same events with ISA-L and with the standard library."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

import eftflow.generate.lhe as lhe
from eftflow.errors import InputError
from eftflow.generate.lhe_fixed import ROW_BLOCK, fixed_layout
from eftflow.generate.lhe_parse import _PAD, _rows, parse_rows

sys.path.insert(0, str(Path(__file__).parent))
from test_lhe_fastpath import assert_identical, mg_like  # noqa: E402

EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    1e22,
    1e23,
    -9.999999999999999e22,
    2.0**53 + 1,
    9007199254740993.0,
    0.1,
    1 / 3,
    123456789.0,
    1e-22,
    1e-27,
    1e27,
]
FORMATS = ["%+.10e", "%.10e", "%.4e", "%+.7e", "%+.16e", "%.17e", "%.8E", "%+.3e", "%.6f"]


def random_values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.uniform(-10, 10, n) * 10.0 ** rng.integers(-40, 41, n)
    v[: n // 4] = rng.integers(-(10**6), 10**6, n // 4) / 10.0 ** rng.integers(0, 8, n // 4)
    v[n // 4 : n // 3] = np.round(v[n // 4 : n // 3], 3)  # short decimals (trailing zeros)
    return np.concatenate([EDGES, -np.array(EDGES), v])


def decode_lines(lines: list[bytes], ncols: int, sample: bytes | None = None):
    """Fixed-width decode of each line, grouped by length, with the layouts of the group's first
    lines not decoded yet (or of ``sample`` only); returns (values, decoded by the fast path)."""
    vals = np.full((len(lines), ncols), np.nan)
    ok = np.zeros(len(lines), bool)
    lens = np.array([len(x) for x in lines])
    for n in np.unique(lens).tolist():
        for _ in range(1 if sample else 8):
            idx = np.flatnonzero((lens == n) & ~ok)
            lay = fixed_layout(sample or lines[idx[0]], ncols) if idx.size else None
            if lay is None:
                break
            assert lay.length == n
            buf = b"".join(lines[i] for i in idx.tolist()) + b" " * (_PAD + lay.width)
            starts = np.arange(idx.size) * n
            starts = np.r_[starts, np.zeros(-idx.size % ROW_BLOCK, int)]
            v, good = lay.decode(_rows(np.frombuffer(buf, np.uint8), starts, lay.width))
            good = good[: idx.size]
            vals[idx[good]], ok[idx[good]] = v[: idx.size][good], True
    return vals, ok


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(np.asarray(a, np.float64).view(np.int64), b.view(np.int64))


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_decimals_equal_float(fmt):
    v = random_values(3000, seed=len(fmt) + FORMATS.index(fmt))
    toks = [(fmt % x).encode() for x in v]
    lines = [b" " + a + b" " + b for a, b in zip(toks, toks[::-1])]
    want = np.array([[float(a), float(b)] for a, b in zip(toks, toks[::-1])])
    got, ok = decode_lines(lines, 2)
    assert same_bits(got[ok], want[ok])
    if fmt != "%.6f":  # (%f of large numbers has too many digits for a layout)
        assert ok.mean() > 0.95
    # through the block parser (fast path where it fits, tokens elsewhere): all values
    buf = b"\n".join(lines) + b"\n"
    a = np.frombuffer(buf + b" " * _PAD, np.uint8)
    nl = np.flatnonzero(a[: len(buf)] == 10)
    rs = np.r_[0, nl[:-1] + 1]
    vals, _ = parse_rows(buf, a, rs, nl, 2, rs, None, "test")
    assert same_bits(vals, want)


def test_exponent_and_digit_boundaries():
    toks = []
    for nf in (0, 1, 4, 10, 14, 15, 16, 17):
        for e in (-27, -23, -22, -21, -1, 0, 1, 21, 22, 23, 27, 28, 99, -99, 100, -100, 308):
            for mant in ("1", "9", "5", "0"):
                toks.append(f"{mant}.{'9' * nf}e{e:+03d}")
                toks.append(f"-{mant}.{'0' * max(nf - 1, 0)}{'1' * min(nf, 1)}e{e:+03d}")
    lines = [b" " + t.encode() for t in toks]
    got, ok = decode_lines(lines, 1)
    want = np.array([[float(t)] for t in toks])
    assert ok.all()
    assert same_bits(got, want)
    # tab-separated, the first number at column 0: no room for a sign before it
    pairs = [(a.lstrip("-"), b) for a, b in zip(toks, toks[::-1])]
    lines = [f"{a}\t{b}".encode() for a, b in pairs]
    got, ok = decode_lines(lines, 2)
    assert ok.mean() > 0.9
    assert same_bits(got[ok], np.array([[float(a), float(b)] for a, b in pairs])[ok])


def test_random_integers_equal_int():
    rng = np.random.default_rng(5)
    n = 4000
    cols = [
        rng.integers(-9999999, 99999999, n),  # (at most 8 characters)
        rng.integers(-9, 99, n),
        rng.integers(-999, 9999, n),
        rng.integers(0, 10, n),
    ]
    lines = [
        (b"%9d %2d %4d %+4d" % (a, b, c, d)) for a, b, c, d in zip(*(x.tolist() for x in cols))
    ]
    got, ok = decode_lines(lines, 4)
    assert ok.all()
    np.testing.assert_array_equal(got, np.array(cols).T)


@pytest.mark.parametrize(
    "field",
    [b" 1 2", b" 12-", b" --1", b" +-1", b"  1+", b"    ", b"   -", b" 1.2", b"  !1", b"  /1",
     b"  )1", b"  ,1", b"  *1", b"  #1", b"1  -", b"- 12", b" 1- "],
)  # fmt: skip
def test_malformed_integer_fields_are_rejected(field):
    got, ok = decode_lines([field + b" 7", b" -12 7", b"  +3 7"], 2, sample=b" -12 7")
    assert ok.tolist() == [False, True, True]
    assert got[1:].tolist() == [[-12, 7], [3, 7]]


@pytest.mark.parametrize("sign", [b"*", b"#", b",", b"!", b"/", b"0"])
def test_bad_float_signs_are_rejected(sign):
    good = b" +1.5000e+01 -2.5000e-01"
    bad = good[:13] + sign + good[14:]
    lines = [good, bad, good.replace(b"e-01", b"e,01"), good.replace(b"+1.5", b" 1.5")]
    got, ok = decode_lines(lines, 2, sample=good)
    assert ok.tolist() == [True, False, False, True]
    assert got[[0, 3]].tolist() == [[15.0, -0.25], [15.0, -0.25]]


def _gz_files(tmp_path):
    text = mg_like(500)
    plain, gz = tmp_path / "ev.lhe", tmp_path / "ev.lhe.gz"
    plain.write_text(text)
    gz.write_bytes(gzip.compress(text.encode()))
    return text.encode(), plain, gz


KW = dict(normalize=None, negative_weights="allow", block_bytes=30_000)


def test_gzip_with_the_standard_library(tmp_path, monkeypatch):
    data, plain, gz = _gz_files(tmp_path)
    ref = lhe.read_lhe(plain, **KW)
    monkeypatch.setattr(lhe, "_igzip", None)  # as without the isal package
    with lhe._open_stream(gz) as fh:
        assert isinstance(fh, lhe._GzipStream)
    assert_identical(lhe.read_lhe(gz, **KW), ref)
    gz.write_bytes(gzip.compress(data)[:-2000])
    with pytest.raises(InputError, match=r"truncated LHE file: .*gzip stream ends early"):
        lhe.read_lhe(gz, **KW)


def test_gzip_with_isal(tmp_path):
    pytest.importorskip("isal")
    data, plain, gz = _gz_files(tmp_path)
    with lhe._open_stream(gz) as fh:
        assert not isinstance(fh, lhe._GzipStream)
    assert_identical(lhe.read_lhe(gz, **KW), lhe.read_lhe(plain, **KW))
    blob = bytearray(gzip.compress(data))
    blob[len(blob) // 2] ^= 0xFF
    gz.write_bytes(bytes(blob))
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        lhe.read_lhe(gz, **KW)
    gz.write_bytes(gzip.compress(data)[:-2000])
    with pytest.raises(InputError, match=r"truncated LHE file: .*gzip stream ends early"):
        lhe.read_lhe(gz, **KW)
