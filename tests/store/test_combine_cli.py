"""The CLI commands combine-events, export-madminer, import-madminer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eftflow.cli import main
from eftflow.store.events import EventStore


def test_combine_export_import_cli(make_store, toy_setup_file, tmp_path, capsys):
    setup, names = toy_setup_file
    a = make_store("a.zarr", 90, 1, benchmarks=names, sampling=0)
    b = make_store("b.zarr", 60, 2, benchmarks=names, sampling=2)
    out = tmp_path / "all.zarr"
    cfg = json.dumps({"seed": 11, "combine": {"validation_split": 0.1, "test_split": 0.3}})
    assert (
        main(
            [
                "combine-events",
                str(a),
                str(b),
                "-o",
                str(out),
                "--setup",
                str(setup),
                "--config",
                cfg,
            ]
        )
        == 0
    )
    st = EventStore(out)
    assert st.attrs["shuffle_seed"] == 11
    assert st.partitions == {"train": (0, 90), "validation": (90, 105), "test": (105, 150)}
    # flags win over config
    argv = [
        "combine-events",
        str(a),
        "-o",
        str(tmp_path / "o2.zarr"),
        "--seed",
        "3",
        "--test-split",
        "0.5",
    ]
    assert main([*argv, "--config", cfg]) == 0
    assert EventStore(tmp_path / "o2.zarr").partitions["test"] == (45, 90)
    assert main(["export-madminer", str(out), "--setup", str(setup), str(tmp_path / "all.h5")]) == 0
    assert main(["import-madminer", str(tmp_path / "all.h5"), str(tmp_path / "back.zarr")]) == 0
    np.testing.assert_array_equal(
        EventStore(tmp_path / "back.zarr").read("weights"), st.read("weights")
    )


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--config", '{"combine": {"shuffle": 1}}'], "combine: unknown key"),
        (["--validation-split", "0.9"], "combine.validation_split"),
    ],
)
def test_cli_errors_are_one_line(make_store, tmp_path, capsys, extra, needle):
    a = make_store("a.zarr", 20, 1)
    assert main(["combine-events", str(a), "-o", str(tmp_path / "o.zarr"), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "o.zarr").exists()


def test_cli_mismatch_names_both_files(make_store, tmp_path, capsys):
    a = make_store("a.zarr", 20, 1)
    b = make_store("b.zarr", 20, 1, benchmarks=("sm", "b1"))
    assert main(["combine-events", str(a), str(b), "-o", str(tmp_path / "o.zarr")]) == 2
    err = capsys.readouterr().err
    assert "a.zarr" in err and "b.zarr" in err and "attrs.benchmark_names" in err


def test_cli_k_factors_count_the_jobs_of_each_recorded_sample(tmp_path):
    # jobs of one sample (as their generator recorded it, anywhere in the provenance chain)
    # share its σ: k = 1/n_jobs; a store with no recorded sample keeps its weights (k = 1).
    # All inputs sit in one directory: the directory name says nothing.
    from eftflow.store.events import EventStoreWriter

    def store(name, sample):
        prov = {"stage": "analyse_events", "upstream": {"generator": {"sample": sample}}}
        with EventStoreWriter(
            tmp_path / name, ["x"], ["sm"], chunk_size=8, provenance=prov if sample else None
        ) as w:
            w.append(observables=np.zeros((10, 1)), weights=np.ones((10, 1)))
        return str(tmp_path / name)

    inputs = [store("a.zarr", "sm"), store("b.zarr", "sm"), store("c.zarr", "t1")]
    inputs.append(store("d.zarr", None))
    assert main(["combine-events", *inputs, "-o", str(tmp_path / "all.zarr"), "--seed", "1"]) == 0
    st = EventStore(tmp_path / "all.zarr")
    assert st.attrs["k_factors"] == [0.5, 0.5, 1.0, 1.0]
    assert st.read("weights").sum() == pytest.approx(10 + 10 + 10)


def test_block_events_makes_the_order_independent_of_memory(make_store, tmp_path):
    a = make_store("a.zarr", 3000, 1)
    b = make_store("b.zarr", 2000, 2)
    outs = []
    for mem in ("16", "64"):
        out = tmp_path / f"o{mem}.zarr"
        argv = ["combine-events", str(a), str(b), "-o", str(out), "--seed", "5",
                "--block-events", "700", "--memory-mb", mem]  # fmt: skip
        assert main(argv) == 0
        outs.append(EventStore(out))
    assert outs[0].attrs["shuffle_blocks"] == outs[1].attrs["shuffle_blocks"] == 8  # ⌈5000/700⌉
    for col in ("observables", "weights", "sampling_benchmark"):
        np.testing.assert_array_equal(outs[0].read(col), outs[1].read(col))
