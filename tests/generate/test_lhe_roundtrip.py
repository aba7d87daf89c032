"""LHE writer → reader round trips, gzip vs plain, chunking, the real MadGraph file."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.generate.lhe import LHEReader, read_lhe
from eftflow.generate.lhe_events import (
    EVENT_COLUMNS,
    PARTICLE_COLUMNS,
    LHEEvents,
    LHEInit,
    LHEProcess,
)
from eftflow.generate.lhe_parse import parse_block
from eftflow.generate.lhe_write import LHEWriter

sys.path.insert(0, str(Path(__file__).parent))
from lhe_reference import reference_parse  # noqa: E402

DATA = Path(__file__).parent / "data"
MG_FILE = DATA / "madgraph-3.5.8-pp_to_jj-40events.lhe.gz"
IDS = ["sm", "w_pos", "y_pos"]


def random_events(n, seed=1, *, varying=True, ids=IDS):
    rng = np.random.default_rng(seed)
    nup = rng.integers(2, 6, n) if varying else np.full(n, 4)
    offsets = np.r_[0, np.cumsum(nup)]
    p = int(offsets[-1])
    mom = rng.normal(0, 300, (p, 3))
    m = np.where(rng.uniform(size=p) < 0.5, 0.0, rng.uniform(0, 100, p))
    e = np.sqrt((mom**2).sum(1) + m**2)
    return LHEEvents(
        nup=nup,
        idprup=rng.integers(1, 3, n),
        xwgtup=rng.uniform(0.1, 2.0, n),
        scalup=rng.uniform(50, 500, n),
        aqedup=np.full(n, 7.8125e-3),
        aqcdup=rng.uniform(0.1, 0.2, n),
        offsets=offsets,
        pid=rng.choice([-13, -11, 1, 2, 11, 13, 21, 23, 1000022], p),
        status=rng.choice([-1, 1, 2], p),
        mother1=rng.integers(0, 3, p),
        mother2=rng.integers(0, 3, p),
        col1=rng.choice([0, 501, 502], p),
        col2=rng.choice([0, 501, 503], p),
        px=mom[:, 0],
        py=mom[:, 1],
        pz=mom[:, 2],
        e=e,
        m=m,
        lifetime=np.zeros(p),
        spin=rng.choice([-1.0, 1.0, 9.0], p),
        weights=rng.uniform(0.01, 3.0, (n, len(ids))) * rng.choice([1e-3, 1.0, 1e4], (n, 1)),
        weight_ids=ids,
    )


def write(path, events, **kw):
    with LHEWriter(
        path,
        init=LHEInit(processes=(LHEProcess(1.0, 0.1, 2.0, 1),)),
        weight_ids=events.weight_ids,
        **kw,
    ) as w:
        w.write(events)


@pytest.mark.parametrize("name", ["ev.lhe", "ev.lhe.gz"])
@pytest.mark.parametrize("varying", [True, False])
def test_roundtrip(tmp_path, name, varying):
    ev = random_events(700, varying=varying)
    write(tmp_path / name, ev)
    back = read_lhe(tmp_path / name)
    assert back.weight_ids == tuple(IDS)
    for col in [*EVENT_COLUMNS, *PARTICLE_COLUMNS, "offsets"]:
        a, b = getattr(ev, col), getattr(back, col)
        if a.dtype.kind == "f":
            # MadGraph's formats: 8 digits for SCALUP, AQEDUP, AQCDUP; 10 for momenta
            rel = {"xwgtup": 1e-14, "scalup": 1e-8, "aqedup": 1e-8, "aqcdup": 1e-8}.get(col, 1e-10)
            np.testing.assert_allclose(b, a, rtol=rel, atol=1e-9, err_msg=col)
        else:
            np.testing.assert_array_equal(b, a, err_msg=col)
    np.testing.assert_allclose(back.weights, ev.weights, rtol=1e-14)


def test_gzip_and_plain_identical(tmp_path):
    ev = random_events(300)
    write(tmp_path / "a.lhe", ev)
    write(tmp_path / "a.lhe.gz", ev)
    assert gzip.open(tmp_path / "a.lhe.gz").read() == (tmp_path / "a.lhe").read_bytes()
    a, b = read_lhe(tmp_path / "a.lhe"), read_lhe(tmp_path / "a.lhe.gz")
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.px, b.px)


def test_chunks_stream_with_small_blocks(tmp_path):
    ev = random_events(1000)
    write(tmp_path / "a.lhe.gz", ev)
    reader = LHEReader(tmp_path / "a.lhe.gz", chunk_size=333, block_bytes=5000)
    chunks = list(reader.iter_chunks())
    assert [len(c) for c in chunks] == [333, 333, 333, 1]
    joined = LHEEvents.concatenate(chunks)
    np.testing.assert_allclose(joined.weights, ev.weights, rtol=1e-14)
    np.testing.assert_array_equal(joined.pid, ev.pid)
    # the line numbers of the chunks' first events are right
    (tmp_path / "a.lhe").write_bytes(gzip.open(tmp_path / "a.lhe.gz").read())
    text = (tmp_path / "a.lhe").read_text().split("\n")
    for c in chunks:
        assert text[c.first_line - 1] == "<event>"


def test_benchmark_mapping(tmp_path):
    ev = random_events(50)
    write(tmp_path / "a.lhe", ev)
    reader = LHEReader(tmp_path / "a.lhe", benchmarks=["y_pos", "sm"])
    got = reader.benchmark_weights(reader.read())
    np.testing.assert_allclose(got, ev.weights[:, [2, 0]], rtol=1e-14)
    cs = reader.cross_sections()
    assert cs["sm"] == pytest.approx(ev.weights[:, 0].sum(), rel=1e-12)


def test_fast_path_is_used_for_writer_output(tmp_path):
    ev = random_events(200, varying=False)
    write(tmp_path / "a.lhe", ev)
    text = (tmp_path / "a.lhe").read_bytes()
    i = text.index(b"<event>")
    j = text.rindex(b"</event>") + 9
    pb = parse_block(text[i:j], weight_prefixes=[f"<wgt id='{w}'>".encode() for w in IDS], line0=1)
    assert pb.fast


def test_generic_path_matches_reference(tmp_path):
    """Irregular spacing (another writer) goes through the generic path and gives the same numbers."""
    path = tmp_path / "odd.lhe"
    path.write_text(
        '<LesHouchesEvents version="1.0">\n<init>\n2212 2212 6500 6500 0 0 0 0 3 1\n1.0 0.1 1.0 1\n</init>\n'
        "<event>\n2 1  0.5 91.2 0.0078 0.118\n 11 1 0 0 0 0  1.5 -2 3e1 30.1 0.000511 0 9\n"
        "-11 1 0 0 0 0 -1.5 2 -3E+01 30.1 5.11e-4 0. -1\n</event>\n"
        "<event>\n 2 1 0.25 91.2 0.0078 0.118\n13 1 0 0 0 0 1 1 1 2 0 0 9\n-13 1 0 0 0 0 -1 -1 -1 2 0 0 9\n</event>\n"
        "</LesHouchesEvents>\n"
    )
    ev = read_lhe(path)
    info, parts, _ = reference_parse(path)
    np.testing.assert_array_equal(ev.xwgtup, info[:, 2])
    np.testing.assert_array_equal(ev.pz, parts[:, 8])
    np.testing.assert_array_equal(ev.spin, parts[:, 12])
    assert ev.pid.tolist() == [11, -11, 13, -13]


def test_real_madgraph_file():
    # 40 events cut from a real MG5_aMC 3.5.8 file (header says 1000): read as written
    reader = LHEReader(MG_FILE, normalize=None)
    h = reader.header
    assert h.mg_version == "3.5.8"
    assert h.event_norm == "average" and h.n_events == 1000
    assert h.run_card["iseed"] == "21" and h.run_card["nevents"] == "1000"
    assert h.init.beam_ids == (2212, 2212) and h.init.pdf_sets == (247000, 247000)
    assert h.init.weighting_strategy == -4
    assert h.init.cross_section == pytest.approx(6.996707e08)
    assert h.generation_info["integrated_weight"] == pytest.approx(699670670.0)
    assert len(h.weight_ids) == 145
    assert h.group_ids("Central scale variation")[:2] == ["1", "2"]
    assert h.weights[0].attrs["MUR"] == "0.5"
    assert "Block mass" in h.param_card or "BLOCK MASS" in h.param_card.upper()
    ev = reader.read()
    info, parts, weights = reference_parse(MG_FILE)
    assert ev.n_events == 40
    np.testing.assert_array_equal(ev.nup, info[:, 0])
    np.testing.assert_array_equal(ev.xwgtup, info[:, 2])
    np.testing.assert_array_equal(ev.scalup, info[:, 3])
    for k, col in enumerate(PARTICLE_COLUMNS):
        np.testing.assert_array_equal(getattr(ev, col), parts[:, k], err_msg=col)
    np.testing.assert_array_equal(ev.weights, weights)


def test_real_madgraph_file_average_normalisation():
    ev = read_lhe(MG_FILE, normalize="sum")
    raw = reference_parse(MG_FILE)[2]
    np.testing.assert_array_equal(ev.weights, raw)
    # auto: event_norm = average divides by the 1000 events the header declares; the cut file holds
    # 40, which the reader reports instead of returning wrongly normalised weights
    with pytest.raises(InputError, match="declares 1000 events but the file holds 40"):
        read_lhe(MG_FILE)
