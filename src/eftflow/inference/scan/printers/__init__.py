"""Printers: where scan points go. ``hdf5`` (GAMBIT layout) and ``ascii``.

Add a printer by writing a module with a class following :class:`Printer` and decorating it
with :func:`register_printer`.
"""

from __future__ import annotations

from eftflow.inference.scan.printers.base import (
    INT_COLUMNS,
    Printer,
    get_printer,
    register_printer,
    registered_printers,
)

__all__ = ["Printer", "get_printer", "register_printer", "registered_printers", "INT_COLUMNS"]
