"""Ratio training refuses rows whose joint ratio r_xz is not positive (negative-weight samples)."""

from __future__ import annotations

import numpy as np
import pytest

from eftflow.errors import InputError
from eftflow.ml.data import TrainingSet

from .conftest import make_ratio, write_set


def test_non_positive_r_xz_is_refused(tmp_path):
    import zarr

    path = make_ratio(tmp_path / "r.zarr", 300, seed=1)
    g = zarr.open_group(str(path), mode="r")
    arrays = {k: g[k][:] for k in g.array_keys()}
    ts = TrainingSet(path)
    assert (ts.read("r_xz", 0, 300) > 0).all()  # the good set reads
    arrays["r_xz"][123, 0] = -0.4
    bad = write_set(tmp_path / "bad.zarr", arrays, kind="ratio")
    with pytest.raises(InputError, match=r"r_xz = -0.4 <= 0 in row 123") as err:
        TrainingSet(bad).read("r_xz", 0, 300)
    assert err.value.file == str(bad) and err.value.field == "r_xz"
    np.testing.assert_array_equal(TrainingSet(bad).read("y", 0, 300), arrays["y"][:, 0])
