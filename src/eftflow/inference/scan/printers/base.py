"""The :class:`Printer` protocol and the printer registry."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from eftflow.errors import ConfigError

__all__ = ["Printer", "register_printer", "get_printer", "registered_printers", "INT_COLUMNS"]

INT_COLUMNS = {
    "MPIrank": np.int32,
    "pointID": np.uint64,
    "scanID": np.int32,
    "Invalidation Code": np.int32,
}
"""Columns stored as integers (everything else is float64)."""

_PRINTERS: dict[str, type] = {}
_BUILTIN = {
    "hdf5": "eftflow.inference.scan.printers.hdf5",
    "ascii": "eftflow.inference.scan.printers.ascii",
}


@runtime_checkable
class Printer(Protocol):
    """Writes scan rows; rows are ``{quantity: (values, isvalid)}`` with equal lengths.

    Lifecycle: ``open(columns, metadata, resume_rows)`` -> ``write(rows)``* / ``flush()`` ->
    ``write_auxiliary(name, values, valid)`` (row-aligned extras, e.g. ``Posterior``) ->
    ``close()``. ``flush`` makes the written rows durable; ``read()`` returns the rows on disk.
    ``resume_rows`` (not None) reopens existing output and truncates it to that many rows.
    """

    name: str
    buffer: int
    directory: Path

    @property
    def pending(self) -> int: ...

    @property
    def path(self) -> Path: ...

    def open(self, columns: list[str], metadata: dict, resume_rows: int | None = None) -> None: ...

    def write(self, rows: dict) -> None: ...

    def flush(self) -> None: ...

    def read(self) -> dict: ...

    def write_auxiliary(self, name: str, values: np.ndarray, valid: np.ndarray) -> None: ...

    def close(self) -> None: ...


def register_printer(name: str):
    """Class decorator: make a printer available as ``printer: {name: <name>}``."""

    def deco(cls):
        cls.name = name
        _PRINTERS[name] = cls
        return cls

    return deco


def registered_printers() -> list[str]:
    """Names of the available printers."""
    for mod in _BUILTIN.values():
        importlib.import_module(mod)
    return sorted(_PRINTERS)


def get_printer(name: str, *, file: str | None = None) -> type:
    """The printer class called ``name``."""
    if name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _PRINTERS:
        raise ConfigError(
            f"unknown printer {name!r} (available: {', '.join(registered_printers())})",
            file=file,
            field="printer.name",
        )
    return _PRINTERS[name]


class BufferedPrinter:
    """Shared buffering for printers: rows collect in memory until :meth:`flush`."""

    def __init__(self, directory: str | Path, *, buffer: int = 100):
        self.directory = Path(directory)
        self.buffer = int(buffer)
        self._pending: list[dict] = []
        self._n_pending = 0
        self.columns: list[str] = []

    @property
    def pending(self) -> int:
        """Rows written but not yet flushed."""
        return self._n_pending

    def write(self, rows: dict) -> None:
        missing = [c for c in self.columns if c not in rows]
        if missing:
            raise KeyError(f"rows lack columns {missing}")
        self._pending.append(rows)
        self._n_pending += len(rows["LogLike"][0])

    def _take(self) -> dict:
        from eftflow.inference.scan.evaluate import concat_rows

        rows = concat_rows(self._pending)
        self._pending = []
        self._n_pending = 0
        return rows
