"""Scanner plugins: ``random``, ``grid``, ``de`` (differential evolution), ``mcmc`` (adaptive
Metropolis), ``dynesty`` (nested sampling).

Add a scanner by writing a module with a class following
:class:`~eftflow.inference.scan.scanners.base.Scanner`, decorated with
:func:`register_scanner`, and either listing it in ``_BUILTIN`` or exposing it through the
entry-point group ``eftflow.scanners``.
"""

from __future__ import annotations

from eftflow.inference.scan.scanners.base import (
    BaseScanner,
    Scanner,
    ScanProblem,
    ScanResult,
    get_scanner,
    register_scanner,
    registered_scanners,
)

__all__ = [
    "BaseScanner",
    "ScanProblem",
    "ScanResult",
    "Scanner",
    "get_scanner",
    "register_scanner",
    "registered_scanners",
]
