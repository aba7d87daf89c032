"""Bad LHE input: each a clear InputError naming the file and the line."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.generate.lhe import LHEReader, read_lhe
from eftflow.generate.lhe_events import LHEEvents, LHEInit
from eftflow.generate.lhe_write import LHEWriter

sys.path.insert(0, str(Path(__file__).parent))
from test_lhe_roundtrip import random_events, write  # noqa: E402


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.lhe"
    write(path, random_events(30, varying=False))
    return path


def lines_of(path):
    return path.read_text().split("\n")


def line_no(lines, predicate, nth=0):
    hits = [i + 1 for i, line in enumerate(lines) if predicate(line)]
    return hits[nth]


def rewrite(path, lines):
    path.write_text("\n".join(lines))
    return path


def test_truncated_event(good, tmp_path):
    lines = lines_of(good)
    cut = line_no(lines, lambda s: s == "<event>", 10)
    bad = rewrite(tmp_path / "t.lhe", lines[: cut + 2])
    with pytest.raises(InputError, match=r"truncated LHE file: .*\(event 11 incomplete") as err:
        read_lhe(bad)
    assert err.value.file == str(bad) and err.value.field == f"line {cut}"


def test_truncated_after_event(good, tmp_path):
    lines = lines_of(good)
    bad = rewrite(tmp_path / "t.lhe", lines[:-2])  # drop </LesHouchesEvents>
    with pytest.raises(InputError, match="no </LesHouchesEvents>"):
        read_lhe(bad)


def test_truncated_gzip(good, tmp_path):
    data = gzip.compress(good.read_bytes())
    bad = tmp_path / "t.lhe.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated|corrupt") as err:
        read_lhe(bad)
    assert err.value.file == str(bad) and err.value.field.startswith("line ")


def test_malformed_number_names_line(good, tmp_path):
    lines = lines_of(good)
    k = line_no(lines, lambda s: s == "<event>", 5) + 2  # a particle line
    lines[k - 1] = lines[k - 1].replace("e+", "x+", 1)
    with pytest.raises(InputError, match="not a number") as err:
        read_lhe(rewrite(tmp_path / "m.lhe", lines))
    assert err.value.field == f"line {k}"


def test_wrong_field_count_names_line(good, tmp_path):
    lines = lines_of(good)
    k = line_no(lines, lambda s: s == "<event>", 7) + 3
    lines[k - 1] = lines[k - 1].rsplit(" ", 1)[0]
    with pytest.raises(InputError, match="13 numbers") as err:
        read_lhe(rewrite(tmp_path / "m.lhe", lines))
    assert err.value.field == f"line {k}"


def test_nup_mismatch(good, tmp_path):
    lines = lines_of(good)
    k = line_no(lines, lambda s: s == "<event>", 3) + 1
    lines[k - 1] = " 5" + lines[k - 1][2:]
    with pytest.raises(InputError, match="NUP = 5") as err:
        read_lhe(rewrite(tmp_path / "m.lhe", lines))
    assert err.value.field == f"line {k}"


def test_weight_id_mismatch_in_event(good, tmp_path):
    lines = lines_of(good)
    k = line_no(lines, lambda s: s.startswith("<wgt id='w_pos'>"), 12)
    lines[k - 1] = lines[k - 1].replace("w_pos", "w_neg")
    with pytest.raises(InputError, match="w_neg") as err:
        read_lhe(rewrite(tmp_path / "m.lhe", lines))
    assert err.value.field == f"line {k}"


def test_missing_weight_in_event(good, tmp_path):
    lines = lines_of(good)
    k = line_no(lines, lambda s: s.startswith("<wgt id='y_pos'>"), 4)
    del lines[k - 1]
    with pytest.raises(InputError, match="2 <wgt> weights, the header declares 3"):
        read_lhe(rewrite(tmp_path / "m.lhe", lines))


def test_benchmarks_not_in_file(good):
    with pytest.raises(InputError, match="benchmarks bsm_1 have no weight") as err:
        LHEReader(good, benchmarks=["sm", "bsm_1"])
    assert "sm, w_pos, y_pos" in str(err.value) and err.value.file == str(good)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_inf_weights(good, tmp_path, value):
    lines = lines_of(good)
    k = line_no(lines, lambda s: s.startswith("<wgt id='sm'>"), 9)
    lines[k - 1] = f"<wgt id='sm'> {value} </wgt>"
    event = max(i + 1 for i, s in enumerate(lines[:k]) if s == "<event>")
    with pytest.raises(InputError, match="NaN or infinite") as err:
        read_lhe(rewrite(tmp_path / "m.lhe", lines))
    assert err.value.field.startswith(f"line {event}")


def test_negative_weights_policy(good, tmp_path, caplog):
    lines = lines_of(good)
    k = line_no(lines, lambda s: s.startswith("<wgt id='sm'>"), 2)
    lines[k - 1] = "<wgt id='sm'> -1.0e-01 </wgt>"
    bad = rewrite(tmp_path / "m.lhe", lines)
    with pytest.raises(InputError, match="negative weights"):
        read_lhe(bad)
    ev = read_lhe(bad, negative_weights="allow")
    assert ev.weight("sm")[2] == -0.1
    with caplog.at_level("WARNING"):
        read_lhe(bad, negative_weights="warn")
    assert "negative weights" in caplog.text


def test_not_lhe(tmp_path):
    bad = tmp_path / "x.lhe"
    bad.write_text("hello\n")
    with pytest.raises(InputError, match="not LHE|not an LHE"):
        read_lhe(bad)
    with pytest.raises(InputError, match="not found"):
        read_lhe(tmp_path / "missing.lhe")


def test_writer_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "out.lhe.gz"
    ev = random_events(5, ids=["a"])
    with pytest.raises(RuntimeError):
        with LHEWriter(out, init=LHEInit(), weight_ids=["a"]) as w:
            w.write(ev)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_nan_and_wrong_ids(tmp_path):
    out = tmp_path / "out.lhe"
    ev = random_events(5, ids=["a"])
    ev.weights[1, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        with LHEWriter(out, init=LHEInit(), weight_ids=["a"]) as w:
            w.write(ev)
    with pytest.raises(InputError, match="weight ids"):
        with LHEWriter(out, init=LHEInit(), weight_ids=["b"]) as w:
            w.write(random_events(5, ids=["a"]))
    with pytest.raises(InputError, match="without quotes"):
        LHEWriter(out, init=LHEInit(), weight_ids=["a b"])
    assert list(tmp_path.iterdir()) == []


def test_write_events_columns(tmp_path):
    out = tmp_path / "out.lhe"
    with LHEWriter(out, init=LHEInit(), weight_ids=["sm", "bsm"]) as w:
        w.write_events(
            pid=[[11, -11]] * 2,
            px=[[1, -1]] * 2,
            py=0.0,
            pz=0.0,
            e=1.0,
            xwgtup=[1.0, 2.0],
            weights=[[1, 2], [3, 4]],
        )
        w.write_events(
            offsets=[0, 3],
            pid=[21, 21, 21],
            px=[0, 1, -1],
            py=[0, 0, 0],
            pz=[1, 0, -1],
            e=[1, 1, 1.5],
            xwgtup=[0.5],
            weights=[[5, 6]],
        )
    ev = read_lhe(out)
    assert ev.nup.tolist() == [2, 2, 3]
    assert ev.weight("bsm").tolist() == [2, 4, 6]
    assert isinstance(ev, LHEEvents) and ev.m[-1] == pytest.approx(np.sqrt(1.5**2 - 2))
