"""GAMBIT-style global scans: models and priors from a YAML scan file, likelihood components
with a dependency resolver, scanner plugins, MPI evaluation, HDF5/ascii printers and resume.

Quick start (see ``docs/scans.md``)::

    from eftflow.inference.scan import run_scan
    summary = run_scan("config/examples/scan.yaml", output="results/scan/example")

Modules: :mod:`.config` (scan file + schema), :mod:`.priors`, :mod:`.model` (parameters),
:mod:`.expressions` (safe arithmetic), :mod:`.components` (registry, resolver),
:mod:`.likelihoods` (built-in forms), :mod:`.evaluate`, :mod:`.mpi`, :mod:`.checkpoint`,
:mod:`.scanners`, :mod:`.printers`, :mod:`.run`, :mod:`.analysis` (post-processing).
"""

from __future__ import annotations

from eftflow.inference.scan.components import InvalidPoint, scan_function
from eftflow.inference.scan.config import ScanSpec, load_scan_config
from eftflow.inference.scan.evaluate import ScanInterrupted
from eftflow.inference.scan.run import ScanSummary, build_scan, run_scan

__all__ = [
    "run_scan",
    "build_scan",
    "load_scan_config",
    "scan_function",
    "InvalidPoint",
    "ScanInterrupted",
    "ScanSpec",
    "ScanSummary",
]
