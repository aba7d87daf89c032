"""Bad LHE files and bad shower options: one clear error naming the file and line/key, nothing written."""

from __future__ import annotations

import gzip

import pytest

from eftflow.errors import ConfigError, InputError
from eftflow.generate.base import GenerationJob
from eftflow.generate.builtin import BuiltinGenerator
from eftflow.setup import EFTSetup
from eftflow.shower.pythia import check_shower_config, shower_lhe

pytest.importorskip("pythia8mc")

NAMES = ["sm", "w_pos"]


@pytest.fixture(scope="module")
def lhe_text(tmp_path_factory) -> str:
    s = EFTSetup()
    s.add_parameter("eft", 1, "W", parameter_range=(-1e-3, 1e-3))
    s.add_benchmark({"W": 0.0}, "sm", verbose=False)
    s.add_benchmark({"W": 1e-3}, "w_pos", verbose=False)
    out = tmp_path_factory.mktemp("lhe") / "dy.lhe.gz"
    BuiltinGenerator().generate(GenerationJob("mll_1000_3000", 0, 40, 5, out, s))
    return gzip.decompress(out.read_bytes()).decode()


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_lhe_is_refused(lhe_text, tmp_path, gz):
    k = -1
    for _ in range(12):  # the start of event 12
        k = lhe_text.index("<event>", k + 1)
    data = lhe_text[: k + 30].encode()
    path = tmp_path / ("cut.lhe.gz" if gz else "cut.lhe")
    # a gzip file cut short (the stream's end is missing), or a plain file cut mid-event
    path.write_bytes(gzip.compress(data)[:-8] if gz else data)
    with pytest.raises(
        InputError, match=r"truncated LHE file: no </LesHouchesEvents> \(event 12 incomplete"
    ) as err:
        shower_lhe(path, tmp_path / "sh.zarr", NAMES, seed=3, config={"mode": "parton"})
    assert (
        err.value.file == str(path) and err.value.field == f"line {lhe_text[:k].count(chr(10)) + 1}"
    )
    assert not list(tmp_path.glob("sh*"))


def test_cut_gzip_member_keeps_the_events_before_the_cut_in_the_count(lhe_text, tmp_path):
    blob = gzip.compress(lhe_text.encode())
    path = tmp_path / "cut.lhe.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(
        InputError, match=r"truncated LHE file: .*incomplete.*gzip stream ends early"
    ):
        shower_lhe(path, tmp_path / "sh.zarr", NAMES, seed=3, config={"mode": "parton"})
    assert not list(tmp_path.glob("sh*"))


@pytest.mark.parametrize("change", ["drop", "add"])
def test_event_with_a_different_number_of_weights(lhe_text, tmp_path, change):
    lines = lhe_text.splitlines(keepends=True)
    i = [n for n, s in enumerate(lines) if s.startswith("<wgt id='w_pos'>")][4]
    lines[i] = "" if change == "drop" else lines[i] + "<wgt id='w_pos'> +1.0e-06 </wgt>\n"
    path = tmp_path / "w.lhe"
    path.write_text("".join(lines))
    with pytest.raises(
        InputError, match=r"event has [13] <wgt> weights, the header declares 2"
    ) as err:
        shower_lhe(path, tmp_path / "sh.zarr", NAMES, seed=3, config={"mode": "parton"})
    assert err.value.file == str(path) and err.value.field.startswith("line ")
    assert not list(tmp_path.glob("sh*"))


@pytest.mark.parametrize(
    "key, value",
    [
        ("max_events", 0),
        ("batch_size", 0),
        ("chunk_size", 0),
        ("chunk_size", -5),
        ("chunk_size", "abc"),
        ("batch_size", 2.5),
        ("max_events", True),
        ("max_failure_fraction", 1.5),
        ("hard_record", "yes"),
        ("pythia_settings", "PartonLevel:MPI = off"),
        ("nonsense", 1),
    ],
)
def test_bad_options_name_the_key(lhe_text, tmp_path, key, value):
    path = tmp_path / "ok.lhe"
    path.write_text(lhe_text)
    with pytest.raises(ConfigError) as err:
        shower_lhe(path, tmp_path / "sh.zarr", NAMES, seed=3, config={key: value})
    assert err.value.field == f"shower.{key}"
    assert not list(tmp_path.glob("sh*"))


def test_good_options_pass_through():
    cfg = {"batch_size": 10, "chunk_size": 20.0, "max_events": None, "max_failure_fraction": 0}
    assert check_shower_config(cfg) == {**cfg, "chunk_size": 20, "max_failure_fraction": 0.0}


def test_event_store_instead_of_lhe_is_named(tmp_path):
    """An event store (a directory) passed as the shower's input says what it is."""
    store = tmp_path / "events.zarr"
    store.mkdir()
    (store / "zarr.json").write_text("{}")
    with pytest.raises(InputError, match="is an event store, not an LHE file") as err:
        shower_lhe(store, tmp_path / "sh.zarr", NAMES, seed=3, config={"mode": "parton"})
    assert err.value.file == str(store) and not (tmp_path / "sh.zarr").exists()
