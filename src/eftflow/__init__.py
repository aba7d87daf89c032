"""eftflow: simulation-based inference for EFT measurements at colliders, at HPC scale.

The top-level namespace is kept light (``eftflow --help`` must be fast): heavy sub-packages are
imported on first attribute access.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = ["__version__", "EFTSetup", "MadMiner"]

_LAZY = {
    "EFTSetup": "eftflow.setup",
    "MadMiner": "eftflow.setup",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'eftflow' has no attribute {name!r}")
