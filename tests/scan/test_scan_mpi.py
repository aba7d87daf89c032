"""MPI: two ranks evaluate, rank 0 writes one consistent HDF5 file."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from eftflow.inference.scan.analysis import load_scan

MPIEXEC = Path(sys.executable).parent / "mpiexec"


@pytest.mark.mpi
@pytest.mark.integration
@pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec (pip mpich) not installed")
def test_mpi_two_ranks(tmp_path):
    scan = tmp_path / "scan.yaml"
    scan.write_text(
        """\
seed: 11
models:
  M:
    parameters:
      x: {prior: flat, range: [-1, 1]}
      y: {prior: gaussian, mean: 0, sigma: 0.5}
components:
  like: {function: loglike_expression, options: {expr: "-0.5*((x-0.3)**2/0.01 + y**2/0.04)"}}
scanner: {name: de, options: {popsize: 10, maxiter: 20}}
"""
    )
    out = tmp_path / "out"
    cmd = [
        str(MPIEXEC),
        "-n",
        "2",
        sys.executable,
        "-m",
        "eftflow",
        "scan",
        str(scan),
        "-o",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()
    with h5py.File(out / "samples.hdf5") as f:
        lengths = {f["data"][k].shape[0] for k in f["data"]}
        assert len(lengths) == 1
    rows = load_scan(out).rows
    ranks, pids = rows["MPIrank"][0], rows["pointID"][0]
    assert set(np.unique(ranks)) == {0, 1}
    for r in (0, 1):
        np.testing.assert_array_equal(
            np.sort(pids[ranks == r]), np.arange(1, (ranks == r).sum() + 1)
        )
    # same points as a single-process run (the DE sequence does not depend on the rank count)
    ref = tmp_path / "ref"
    res1 = subprocess.run(
        [sys.executable, "-m", "eftflow", "scan", str(scan), "-o", str(ref)],
        capture_output=True,
        timeout=300,
    )
    assert res1.returncode == 0, res1.stderr.decode()
    np.testing.assert_array_equal(load_scan(ref).rows["LogLike"][0], rows["LogLike"][0])
