"""The fixed-width fast path and the generic parser give identical arrays on the same input."""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import eftflow.generate.lhe_parse as lhe_parse
from eftflow.errors import InputError
from eftflow.generate.lhe import LHEReader, _GzipStream, read_lhe
from eftflow.generate.lhe_fixed import fixed_layout

sys.path.insert(0, str(Path(__file__).parent))
from lhe_reference import reference_parse  # noqa: E402

HEAD = (
    '<LesHouchesEvents version="3.0">\n<header>\n<initrwgt>\n<weightgroup name="g">\n'
    "<weight id='a'>x</weight>\n<weight id='b'>y</weight>\n</weightgroup>\n</initrwgt>\n"
    "</header>\n<init>\n2212 2212 6500 6500 0 0 0 0 -4 1\n1.0 0.1 1.0 1\n</init>\n"
)
PART = "%9d %2d %4d %4d %4d %4d %+.10e %+.10e %+.10e %.10e %.10e %.4e %.4e\n"


def mg_like(n: int, seed: int = 1, *, big_exponents: bool = False) -> str:
    """MadGraph-style events: signs, a last column that changes width, 17-digit weights."""
    rng = np.random.default_rng(seed)
    out = [HEAD]
    for i in range(n):
        p = rng.normal(size=4) * 10.0 ** rng.integers(-3, 4, 4)
        if big_exponents:
            p *= 10.0 ** rng.choice([-40, -25, 0, 25, 40])
        w = rng.uniform(0.1, 2.0, 3) * 10.0 ** rng.integers(-12, 3, 3)
        out.append("<event>\n")
        out.append(" 2      1 %+.16e %.8e %.8e %.8e\n" % (w[0], 91.188, 7.8e-3, -0.118))  # noqa: UP031
        hel = rng.choice([-1.0, 1.0, 9.0])
        out.append(PART % (-11, -1, 0, 0, 501 * i % 997, 0, *p[:3], abs(p[3]), 0.0, 0.0, hel))
        out.append(PART % (1000022, 1, 1, 2, 0, 0, *(-p[:3]), abs(p[3]), 0.511, 1e-3, -hel))
        out.append("<rwgt>\n")
        out.append(f"<wgt id='a'> {w[1]:+.16e} </wgt>\n<wgt id='b'> {-w[2]:+.7e} </wgt>\n")
        out.append("</rwgt>\n</event>\n")
    out.append("</LesHouchesEvents>\n")
    return "".join(out)


def read_both(path, monkeypatch, **kw):
    fast = read_lhe(path, normalize=None, negative_weights="allow", **kw)
    with monkeypatch.context() as m:  # no layout: every row through the generic parser
        m.setattr(lhe_parse, "fixed_layout", lambda *a: None)
        slow = read_lhe(path, normalize=None, negative_weights="allow", **kw)
    return fast, slow


def assert_identical(a, b):
    for name, x in a.columns().items():
        y = getattr(b, name)
        np.testing.assert_array_equal(x, y, err_msg=name)
        if x.dtype.kind == "f":  # also the sign of zeros
            np.testing.assert_array_equal(np.signbit(x), np.signbit(y), err_msg=name)


@pytest.mark.parametrize("big", [False, True])
def test_fast_and_generic_paths_identical(tmp_path, monkeypatch, big):
    path = tmp_path / "ev.lhe"
    path.write_text(mg_like(3000, big_exponents=big))
    fast, slow = read_both(path, monkeypatch, block_bytes=100_000)
    assert_identical(fast, slow)
    info, parts, weights = reference_parse(path)
    np.testing.assert_array_equal(fast.xwgtup, info[:, 2])
    np.testing.assert_array_equal(fast.weights, weights)
    for k, col in enumerate(["pid", "status", "mother1", "mother2", "col1", "col2", "px", "py"]):
        np.testing.assert_array_equal(getattr(fast, col), parts[:, k], err_msg=col)
    np.testing.assert_array_equal(fast.spin, parts[:, 12])
    assert set(np.unique(fast.pid)) == {-11, 1000022}


def test_fast_path_decodes_writer_and_mg_rows():
    text = mg_like(200).encode()
    i, j = text.index(b"<event>"), text.rindex(b"</event>") + 9
    pb = lhe_parse.parse_block(
        text[i:j], weight_prefixes=[b"<wgt id='a'>", b"<wgt id='b'>"], line0=1
    )
    assert pb.fast and pb.info.shape == (200, 6) and pb.particles.shape == (400, 13)


@pytest.mark.parametrize(
    "token",
    [
        "9.007199254740993e+15",  # exactly halfway between two doubles: float() rounds to even
        "1.2345678901234567e-22",
        "-4.9406564584124654e-300",
        "+1.7976931348623157e+300",
        "-0.0000000000000000e+00",
        "0.10000000000000001e+01",
        "12345678901234567.5",
    ],
)
def test_hard_numbers_equal_float(token):
    line = f" {token} {token}".encode()
    lay = fixed_layout(line, 2)
    rows = np.frombuffer(line + b" " * (lay.width * 300), np.uint8)
    rows = np.lib.stride_tricks.sliding_window_view(rows, lay.width)[np.zeros(256, int)]
    vals, ok = lay.decode(rows)
    assert ok.all()
    assert vals[0, 0] == float(token) and np.signbit(vals[0, 0]) == np.signbit(float(token))


def test_layouts_refused_for_generic_rows():
    assert fixed_layout(b" 1234567890123456789.5", 1) is None  # 19 digits: not exact
    assert fixed_layout(b" 1 2", 3) is None and fixed_layout(b" 1 x", 2) is None
    assert fixed_layout(b" .5 1e5", 2) is None


@pytest.mark.parametrize(
    "bad",
    [b"  1.5e+0x", b" 1.5e+01 ", b"  1.5f+01", b"  1-5e+01", b" 1.5e+011", b" 1.5 e+01"],
)
def test_rows_off_the_layout_are_rejected(bad):
    lay = fixed_layout(b" +1.5e+01", 1)
    assert lay is not None
    data = bad.ljust(9)[:9] + b" " * (lay.width * 300)
    rows = np.lib.stride_tricks.sliding_window_view(np.frombuffer(data, np.uint8), lay.width)
    _, ok = lay.decode(rows[np.zeros(256, int)])
    assert not ok.any()


def test_integer_fields():
    lay = fixed_layout(b"      -11 -1    0  501", 4)
    lines = [b"  1000022  1  -12    3", b"       -1 +1    0 9999", b"      1 1  1    0    2"]
    data = b"".join(x.ljust(22) for x in lines) + b" " * 4000
    a = np.frombuffer(data, np.uint8)
    rows = np.lib.stride_tricks.sliding_window_view(a, lay.width)[np.r_[0, 22, 44, [0] * 253]]
    vals, ok = lay.decode(rows)
    assert ok[:2].all() and not ok[2]  # the third has five numbers
    assert vals[:2].tolist() == [[1000022, 1, -12, 3], [-1, 1, 0, 9999]]


def test_odd_weight_lines_and_spacing_fall_back(tmp_path, monkeypatch):
    text = (
        mg_like(50)
        .replace("<wgt id='b'> ", "<wgt id='b'>")
        .replace(" </wgt>\n</rwgt>", "</wgt> \n</rwgt>")
    )
    lines = text.split("\n")
    k = lines.index("<event>", 20) + 2
    lines[k] = "  " + lines[k].replace("  ", " ")  # one particle line with other spacing
    path = tmp_path / "odd.lhe"
    path.write_text("\n".join(lines))
    fast, slow = read_both(path, monkeypatch)
    assert_identical(fast, slow)
    np.testing.assert_array_equal(fast.weights, reference_parse(path)[2])


def test_malformed_row_names_its_line(tmp_path):
    text = mg_like(300)
    lines = text.split("\n")
    k = [i for i, x in enumerate(lines) if x.startswith("  1000022")][123]
    lines[k] = lines[k].replace("e+", "x+", 1)
    path = tmp_path / "bad.lhe"
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match="is not a number") as err:
        read_lhe(path, normalize=None, negative_weights="allow", block_bytes=20_000)
    assert err.value.field == f"line {k + 1}" and str(path) in str(err.value)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_inside_a_later_block(tmp_path, gz):
    text = mg_like(400)
    cut = text.index("<event>", len(text) * 2 // 3) + 40
    path = tmp_path / ("t.lhe.gz" if gz else "t.lhe")
    data = text[:cut].encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(InputError, match="truncated") as err:
        list(
            LHEReader(
                path, normalize=None, negative_weights="allow", block_bytes=10_000
            ).iter_chunks()
        )
    assert err.value.field == f"line {text[:cut].count(chr(10))}"  # the <event> line


def test_gzip_stream_members_and_corruption(tmp_path):
    data = mg_like(100).encode()
    path = tmp_path / "m.lhe.gz"
    path.write_bytes(gzip.compress(data[:5000]) + gzip.compress(data[5000:]))
    fh = _GzipStream(path)
    got = b"".join(iter(lambda: fh.read(777), b""))
    fh.close()
    assert got == data
    ev = read_lhe(path, normalize=None, negative_weights="allow")
    assert ev.n_events == 100
    blob = bytearray(gzip.compress(data))
    blob[-8] ^= 0xFF  # CRC
    path.write_bytes(bytes(blob))
    with _GzipStream(path) as fh, pytest.raises(zlib.error):
        fh.read(1 << 30)
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        read_lhe(path, normalize=None, negative_weights="allow")
