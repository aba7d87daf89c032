"""Small helpers of the event stores: provenance records, finiteness checks, name attributes,
waiting on thread-pool futures (used by :mod:`eftflow.store.events` and the shuffle)."""

from __future__ import annotations

import datetime as _dt
import os

import numpy as np

from eftflow.errors import InputError

__all__ = ["make_provenance", "check_finite", "wait_all"]


def make_provenance(**fields) -> dict:
    """Provenance record: eftflow version, date, plus the given fields (seeds, generator, config hash).

    Inside a SLURM job it also records ``slurm_job_id`` (and, for a task of a job array,
    ``slurm_array_job_id`` and ``slurm_array_task_id``: SLURM names it ``<array>_<task>``) from the
    environment, so every output names the batch job that wrote it.
    """
    from eftflow import __version__

    out = {
        "eftflow_version": __version__,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID") or None,
        "slurm_array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID") or None,
        "slurm_array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID") or None,
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def check_finite(values: np.ndarray, *, file, field: str, start: int = 0) -> None:
    """Raise :class:`InputError` naming the first event (row ``start + i``) with a NaN or
    infinite value in ``values``. One reduction when all is well (a sum is finite exactly when
    no entry is NaN or infinite, barring overflow, which the exact search then clears)."""
    if np.isfinite(np.add.reduce(values, axis=None)):
        return
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"non-finite weight in event {start + i}", file=str(file), field=field)


def wait_all(futures) -> list:
    """Results of ``futures`` in order; on the first error the ones not yet started are cancelled."""
    try:
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()


def _names(attrs: dict, key: str, path: str, *, optional: bool = False) -> list[str] | None:
    """Attribute ``key`` as a list of strings (None allowed if ``optional``), else InputError."""
    v = attrs.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InputError(
            f"is {v!r}, not a list of names: the store is damaged", file=path, field=f"attrs.{key}"
        )
    return list(v)
