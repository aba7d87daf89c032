"""Truncated LHE files: the event at the cut is named, with the ISA-L and the zlib gzip readers."""

from __future__ import annotations

import gzip

import pytest

from eftflow.errors import ConfigError, InputError
from eftflow.generate import lhe
from eftflow.generate.base import GenerationJob, check_count
from eftflow.generate.lhe_events import LHEEvents, LHEInit
from eftflow.generate.lhe_write import LHEWriter

N = 3000


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lhe") / "ev.lhe"
    ev = LHEEvents.from_fixed(
        pid=[[11, -11]] * N, px=[[1.0, -1.0]] * N, py=0.0, pz=0.0, e=1.0,
        xwgtup=[1.0] * N, weights=[[1.0, 2.0]] * N, weight_ids=["sm", "bsm"],
    )  # fmt: skip
    with LHEWriter(path, init=LHEInit(), weight_ids=["sm", "bsm"]) as w:
        w.write(ev)
    return path.read_text()


@pytest.mark.parametrize("isal", [True, False])
@pytest.mark.parametrize("where", [0.3, 0.9])
def test_cut_gzip_names_the_incomplete_event(text, tmp_path, monkeypatch, isal, where):
    if isal:
        pytest.importorskip("isal")
    else:
        monkeypatch.setattr(lhe, "_igzip", None)
    blob = gzip.compress(text.encode())
    path = tmp_path / "cut.lhe.gz"
    path.write_bytes(blob[: int(len(blob) * where)])
    # what can be inflated from the cut file: its complete events come first
    d = __import__("zlib").decompressobj(31)
    readable = d.decompress(path.read_bytes()).decode()
    n_complete = readable.count("</event>")
    with pytest.raises(InputError) as err:
        list(lhe.LHEReader(path, block_bytes=50_000).iter_chunks())
    msg = str(err.value)
    assert "truncated LHE file: no </LesHouchesEvents>" in msg
    assert f"event {n_complete + 1} incomplete" in msg and "gzip stream ends early" in msg
    assert err.value.file == str(path)


def test_cut_inside_the_header(text, tmp_path):
    blob = gzip.compress(text.encode())
    path = tmp_path / "cut.lhe.gz"
    path.write_bytes(blob[:60])
    with pytest.raises(InputError, match="truncated LHE file|no complete <init>"):
        lhe.LHEReader(path)


def test_plain_file_cut_between_events(text, tmp_path):
    k = text.index("</event>", len(text) // 2) + len("</event>\n")
    path = tmp_path / "cut.lhe"
    path.write_text(text[:k])
    n = text[:k].count("</event>")
    with pytest.raises(InputError, match=rf"no </LesHouchesEvents> \(after event {n}\)"):
        list(lhe.LHEReader(path).iter_chunks())


@pytest.mark.parametrize("value", [0, -1, "abc", 2.5, True, None])
def test_check_count(value):
    with pytest.raises(ConfigError) as err:
        check_count(value, field="x.chunk_size", file="c.yaml")
    assert (err.value.file, err.value.field) == ("c.yaml", "x.chunk_size")
    assert check_count(None, field="x", allow_none=True) is None
    assert check_count(3.0, field="x") == 3


@pytest.mark.parametrize("value", [0, -4, "abc"])
def test_generation_job_checks_chunk_size(tmp_path, value):
    with pytest.raises(ConfigError) as err:
        GenerationJob(
            "s", 0, 10, 1, tmp_path / "o.zarr", None,
            options={"chunk_size": value}, provenance={"backend": "toy"},
        )  # fmt: skip
    assert err.value.field == "generation.toy.chunk_size"
