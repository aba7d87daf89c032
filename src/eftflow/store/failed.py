"""Failure markers: the output of a generator job that failed for good, and of what follows it.

With ``generation.max_failed_fraction > 0`` a generator job that still fails at its last attempt
does not stop the workflow: it writes a *failure marker* at its output path and exits 0. Each
later per-job stage (shower, detector, analysis) sees the marker at its input and writes a marker
at its own output (:func:`eftflow.cli.common.propagate_failure`); ``combine-events`` leaves the
markers out, fails when the lost fraction is above the tolerance, and records the lost jobs in
the combined store's ``lost_jobs`` attribute (the report lists them).

A marker is tiny and says what was lost and why:

* at a ``*.zarr`` path: a zarr group whose attributes are ``{"format": "eftflow-failed",
  "failed": true, "reason": ..., "stage": ..., "sample": ..., "job": ...}`` (opening it as an
  event store fails with "not an eftflow event store (format='eftflow-failed')");
* at any other path (``*.lhe.gz``, ``*.lhe``): an LHE-looking text file (gzip-compressed for
  ``.gz``) whose comment holds the same record as JSON.

Example
-------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_failure_marker(d / "0.zarr", reason="MadGraph crashed", stage="generate_events",
...                          sample="sm", job=0)
>>> read_failure_marker(d / "0.zarr")["reason"]
'MadGraph crashed'
>>> read_failure_marker(d) is None
True
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from eftflow.store.atomic import atomic_path

__all__ = [
    "FORMAT",
    "write_failure_marker",
    "read_failure_marker",
    "is_failure_marker",
    "record_lost_jobs",
]

#: ``format`` attribute of a failure marker.
FORMAT = "eftflow-failed"
_TOKEN = "eftflow-failure-marker"


def write_failure_marker(
    path: str | os.PathLike,
    *,
    reason: str,
    stage: str,
    sample: str | None = None,
    job: int | None = None,
    upstream: dict | None = None,
    **extra: Any,
) -> dict:
    """Write a failure marker at ``path`` (atomically) and return its record.

    Parameters
    ----------
    path
        The output path the failed step should have written (``*.zarr`` or a file).
    reason
        Why it failed (the error message).
    stage
        The stage that failed or passed the marker on (``generate_events``, ``shower_events``...).
    sample, job
        The generator job the marker stands for.
    upstream
        The marker record this one was propagated from (its ``sample``, ``job`` and ``reason``
        are inherited when not given).
    **extra
        More JSON-serialisable fields (e.g. ``attempt``).
    """
    from eftflow.store.events import make_provenance

    upstream = dict(upstream or {})
    record = {
        "format": FORMAT,
        "failed": True,
        "reason": str(reason),
        "stage": stage,
        "failed_stage": upstream.get("failed_stage", stage),
        "sample": sample if sample is not None else upstream.get("sample"),
        "job": job if job is not None else upstream.get("job"),
        **extra,
        "provenance": make_provenance(stage=stage),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".zarr":
            tmp.mkdir()
            meta = {"zarr_format": 3, "node_type": "group", "attributes": record}
            (tmp / "zarr.json").write_text(json.dumps(meta, indent=1))
        else:
            text = (
                '<LesHouchesEvents version="3.0">\n'
                f"<!-- {_TOKEN}\n{json.dumps(record, indent=1)}\n-->\n"
                "</LesHouchesEvents>\n"
            )
            data = text.encode()
            tmp.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return record


def read_failure_marker(path: str | os.PathLike) -> dict | None:
    """The record of the failure marker at ``path``, or ``None`` when it is not a marker.

    Cheap for real outputs: reads a store's ``zarr.json`` or the first 64 kB of a file.
    """
    path = Path(path)
    try:
        if path.is_dir():
            meta_file = path / "zarr.json"
            if not meta_file.is_file():
                return None
            attrs = json.loads(meta_file.read_text()).get("attributes") or {}
            return dict(attrs) if attrs.get("format") == FORMAT else None
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            magic = f.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            head = f.read(65536).decode("utf-8", errors="replace")
    except (OSError, ValueError, EOFError):
        return None
    start = head.find(_TOKEN)
    if start < 0:
        return None
    end = head.find("-->", start)
    try:
        record = json.loads(head[start + len(_TOKEN) : end])
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def is_failure_marker(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a failure marker."""
    return read_failure_marker(path) is not None


def record_lost_jobs(store: str | os.PathLike, lost: dict) -> None:
    """Add the ``lost_jobs`` record to a finished store's attributes (its zarr.json, atomically).

    ``lost`` is JSON-serialisable: counts, the tolerance and one entry per lost job.
    """
    import uuid

    meta_file = Path(store) / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta.setdefault("attributes", {})["lost_jobs"] = lost
    tmp = meta_file.with_name(f".zarr.json.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_file)
