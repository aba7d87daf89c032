"""Train/validation/test partitions of a combined event store, and per-partition weight factors.

A combined store (``eftflow combine-events``, :mod:`eftflow.store.combine`) records
``attrs["partitions"] = {"train": [a, b], "validation": [b, c], "test": [c, n]}`` (half-open
index ranges; the store is shuffled, so each range is a random subset). A partition holding a
fraction f = (stop − start)/n of the events estimates cross sections as Σ w / f: every weight read
from it is multiplied by 1/f (MadMiner's ``correction_factor``). The name ``"all"`` means the whole
store (f = 1). A store without the attribute counts as all-train (and a warning says so):
``validation`` and ``test`` are then empty, which is an error wherever events are needed.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from eftflow.store.events import EventStoreWriter, EventStore
>>> p = pathlib.Path(tempfile.mkdtemp()) / "ev.zarr"
>>> with EventStoreWriter(p, ["x"], ["sm"], attrs={"partitions": {"train": [0, 6],
...         "validation": [6, 8], "test": [8, 10]}}) as w:
...     w.append(observables=np.zeros((10, 1)), weights=np.ones((10, 1)))
>>> partition_bounds(EventStore(p), "test")
(8, 10, 0.2)
"""

from __future__ import annotations

import logging

from eftflow.errors import InputError

__all__ = ["partition_bounds", "PARTITION_NAMES"]

log = logging.getLogger(__name__)

PARTITION_NAMES = ("train", "validation", "test", "all")


def partition_bounds(store, name: str) -> tuple[int, int, float]:
    """``(start, stop, fraction)`` of partition ``name`` of ``store``.

    Raises
    ------
    InputError
        Unknown partition name, or an empty partition.
    """
    n = int(store.n_events)
    if name not in PARTITION_NAMES:
        raise InputError(
            f"unknown partition {name!r}; expected one of {', '.join(PARTITION_NAMES)}",
            file=str(store.path),
            field="partition",
        )
    if name == "all":
        start, stop = 0, n
    else:
        parts = store.attrs.get("partitions")
        if parts is None:
            log.warning(
                "%s has no partitions attribute: all %d events count as 'train'", store.path, n
            )
            parts = {"train": [0, n], "validation": [n, n], "test": [n, n]}
        if name not in parts:
            raise InputError(
                f"store has no partition {name!r}; available: {', '.join(parts)}",
                file=str(store.path),
                field="attrs.partitions",
            )
        start, stop = (int(v) for v in parts[name])
    if not 0 <= start < stop <= n:
        raise InputError(
            f"partition {name!r} is empty ([{start}, {stop}) of {n} events): nothing to sample from or "
            "sum over; re-run combine-events with a larger split for it",
            file=str(store.path),
            field=f"attrs.partitions.{name}",
        )
    return start, stop, (stop - start) / n
