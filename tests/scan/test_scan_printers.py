"""Invariant tests over every printer: round trip, isvalid flags, GAMBIT layout."""

import numpy as np
import pytest

from eftflow.inference.scan import build_scan, run_scan
from eftflow.inference.scan.analysis import load_scan
from eftflow.inference.scan.printers import registered_printers

PRINTERS = ["ascii", "hdf5"]


def test_every_printer_is_covered():
    assert registered_printers() == PRINTERS


def _spec(make_scan, printer):
    spec = make_scan("random", {"n_points": 250, "batch_size": 40})
    # log(x) is NaN for x < 0: those points must be printed as invalid, the scan goes on
    spec["components"] = {
        "logx": {"function": "expression", "options": {"expr": "log(x + 0.5)"}},
        "like": {"function": "loglike_expression", "options": {"expr": "logx - y**2"}},
    }
    spec["printer"] = {"name": printer, "buffer": 64}
    return spec


@pytest.mark.parametrize("printer", PRINTERS)
def test_printer_round_trip_and_invalid_points(printer, tmp_path, make_scan):
    spec = _spec(make_scan, printer)
    summary = run_scan(spec, output=tmp_path)
    out = load_scan(tmp_path)
    rows = out.rows
    n = summary.n_points
    assert n == 250 and all(len(v) == n and len(ok) == n for v, ok in rows.values())
    # the printed values equal a direct evaluation of the same unit-cube points
    built = build_scan(spec)
    unit = np.column_stack([rows["unitCubeParameters[0]"][0], rows["unitCubeParameters[1]"][0]])
    direct = built.pipeline.evaluate(unit)
    for col, (values, valid) in direct.items():
        if col == "Runtime(ms)":
            continue
        np.testing.assert_array_equal(rows[col][1], valid, err_msg=col)
        np.testing.assert_array_equal(rows[col][0][valid], values[valid], err_msg=col)
    x = out.values("M::x")
    bad = x < -0.5
    assert bad.any() and (~bad).any()
    label = "#logx @eftflow::expression"
    np.testing.assert_array_equal(rows[label][1], ~bad)
    np.testing.assert_array_equal(rows["Invalidation Code"][0], np.where(bad, 1, 0))
    np.testing.assert_array_equal(out.loglike[bad], -1e6)
    assert np.all(np.isfinite(out.loglike))
    # identity columns: pointID 1..n on rank 0
    np.testing.assert_array_equal(rows["MPIrank"][0], 0)
    np.testing.assert_array_equal(np.sort(rows["pointID"][0]), np.arange(1, n + 1))


def test_hdf5_layout(tmp_path, make_scan):
    import h5py

    run_scan(_spec(make_scan, "hdf5"), output=tmp_path)
    with h5py.File(tmp_path / "samples.hdf5") as f:
        data = f["data"]
        assert data["pointID"].dtype == np.uint64 and data["MPIrank"].dtype == np.int32
        assert data["LogLike"].dtype == np.float64 and data["LogLike_isvalid"].dtype == np.int32
        assert data["LogLike"].maxshape == (None,) and data["LogLike"].chunks == (100,)
        assert "#M_parameters @M::primary_parameters::x" in data
        assert "#like @eftflow::loglike_expression_isvalid" in data
        for key in ("YAML", "version", "date", "lastPointID", "scanner.name", "seed"):
            assert key in f["metadata"], key
        assert f["metadata/lastPointID"][()] == b'{"0": 250}'


def test_ascii_info_file(tmp_path, make_scan):
    run_scan(_spec(make_scan, "ascii"), output=tmp_path)
    info = (tmp_path / "samples.txt_info").read_text().splitlines()
    assert info[0] == "Column 1: MPIrank" and "Column 2: pointID" in info
    first = (tmp_path / "samples.txt").read_text().splitlines()[0].split()
    assert len(first) == sum(line.startswith("Column") for line in info)
