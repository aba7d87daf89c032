"""HDF5 printer in GAMBIT's layout.

``samples.hdf5``:

* ``/data/<quantity>`` one 1-D dataset per quantity (float64; ``MPIrank``/``scanID``/
  ``Invalidation Code`` int32, ``pointID`` uint64), all the same length, chunks of 100 rows,
  ``maxshape=(None,)``; each with ``/data/<quantity>_isvalid`` (int32 0/1).
* ``/metadata/<flattened.yaml.key>`` one string dataset per key of the defaulted scan file,
  ``YAML`` (the input text), ``version``, ``date``, ``lastPointID`` (JSON ``{rank: id}``).
* Extras written at the end, row-aligned: ``Posterior`` (sample weights of nested sampling or
  MCMC) with ``Posterior_isvalid``.

Only rank 0 writes (ranks send it their rows). The file is opened for each flush and closed
again, so a killed scan leaves a readable file; on resume it is truncated to the checkpoint's
committed row count.
"""

from __future__ import annotations

import datetime
import json

import numpy as np

from eftflow.errors import InputError
from eftflow.inference.scan.config import flatten
from eftflow.inference.scan.printers.base import INT_COLUMNS, BufferedPrinter, register_printer

__all__ = ["HDF5Printer", "read_hdf5"]

CHUNK = 100


def _safe(name: str) -> str:
    return name.replace("/", "|")


@register_printer("hdf5")
class HDF5Printer(BufferedPrinter):
    """See module docstring."""

    filename = "samples.hdf5"

    @property
    def path(self):
        return self.directory / self.filename

    def open(self, columns, metadata, resume_rows=None) -> None:
        import h5py

        self.columns = list(columns)
        if resume_rows is not None:
            self._truncate(resume_rows)
            return
        from eftflow import __version__

        with h5py.File(self.path, "w") as f:
            data = f.create_group("data")
            for col in self.columns:
                dtype = INT_COLUMNS.get(col, np.float64)
                data.create_dataset(
                    _safe(col), shape=(0,), maxshape=(None,), chunks=(CHUNK,), dtype=dtype
                )
                data.create_dataset(
                    _safe(col) + "_isvalid",
                    shape=(0,),
                    maxshape=(None,),
                    chunks=(CHUNK,),
                    dtype=np.int32,
                )
            meta = f.create_group("metadata")
            for key, value in flatten(metadata.get("spec", {})).items():
                meta.create_dataset(_safe(key), data=json.dumps(value))
            meta.create_dataset("YAML", data=metadata.get("yaml", ""))
            meta.create_dataset("version", data=f"eftflow {__version__}")
            meta.create_dataset("date", data=datetime.datetime.now(datetime.UTC).isoformat())
            meta.create_dataset("lastPointID", data="{}")

    def _open_rw(self):
        import h5py

        try:
            return h5py.File(self.path, "r+")
        except OSError as err:
            raise InputError(
                f"cannot open scan output for appending ({err})", file=str(self.path)
            ) from None

    def _truncate(self, n: int) -> None:
        with self._open_rw() as f:
            if "data" not in f:
                raise InputError("not a scan output file (no /data)", file=str(self.path))
            missing = [c for c in self.columns if _safe(c) not in f["data"]]
            if missing:
                raise InputError(
                    "output lacks datasets the scan writes",
                    file=str(self.path),
                    field=f"data/{missing[0]}",
                )
            for col in self.columns:
                for name in (_safe(col), _safe(col) + "_isvalid"):
                    ds = f["data"][name]
                    if ds.shape[0] < n:
                        raise InputError(
                            f"has {ds.shape[0]} rows but the checkpoint committed {n}",
                            file=str(self.path),
                            field=f"data/{name}",
                        )
                    ds.resize((n,))
            for name in list(f["data"]):
                if name.startswith("Posterior"):
                    del f["data"][name]

    def flush(self) -> None:
        rows = self._take()
        if not rows:
            return
        n = len(rows["LogLike"][0])
        with self._open_rw() as f:
            data = f["data"]
            start = data[_safe("LogLike")].shape[0]
            for col in self.columns:
                values, valid = rows[col]
                for name, arr in ((_safe(col), values), (_safe(col) + "_isvalid", valid)):
                    ds = data[name]
                    ds.resize((start + n,))
                    if np.issubdtype(ds.dtype, np.integer):
                        arr = np.where(np.isfinite(arr), arr, 0) if arr.dtype.kind == "f" else arr
                    ds[start:] = np.asarray(arr).astype(ds.dtype)
            ranks = data["MPIrank"][...]
            pids = data["pointID"][...]
            last = {int(r): int(pids[ranks == r].max()) for r in np.unique(ranks)}
            del f["metadata"]["lastPointID"]
            f["metadata"].create_dataset("lastPointID", data=json.dumps(last))
            f.flush()

    def read(self) -> dict:
        return read_hdf5(self.path)

    def write_auxiliary(self, name, values, valid) -> None:
        with self._open_rw() as f:
            data = f["data"]
            for dname, arr, dtype in (
                (name, values, np.float64),
                (name + "_isvalid", valid, np.int32),
            ):
                if dname in data:
                    del data[dname]
                data.create_dataset(
                    dname, data=np.asarray(arr).astype(dtype), maxshape=(None,), chunks=(CHUNK,)
                )

    def close(self) -> None:
        self.flush()


def read_hdf5(path) -> dict:
    """Read ``/data`` of a GAMBIT-layout file: ``{quantity: (values, isvalid bool)}``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            data = f["data"]
            out = {}
            for name in data:
                if name.endswith("_isvalid"):
                    continue
                valid = (
                    data[name + "_isvalid"][...].astype(bool) if name + "_isvalid" in data else None
                )
                values = data[name][...]
                out[name.replace("|", "/")] = (
                    values,
                    valid if valid is not None else np.ones(len(values), bool),
                )
            return out
    except (OSError, KeyError) as err:
        raise InputError(f"cannot read scan output ({err})", file=str(path)) from None
