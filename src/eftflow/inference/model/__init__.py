"""The neural statistical model: binned HistFactory regions and unbinned learned-ratio regions
with shared parameters, constraints, batched torch NLL, toys and inference (see
``docs/statistical-model.md``).

Heavy imports (torch) happen inside functions; importing this package is cheap.
"""

from __future__ import annotations

from .histfactory import HistFactoryModel, from_pyhf
from .model import BinnedRegion, ModelData, StatModel
from .params import ModelParameter
from .unbinned import (
    EnsembleLogRatio,
    ExactLogRatio,
    Process,
    UnbinnedData,
    UnbinnedRegion,
    UpDownLogRatio,
)

__all__ = [
    "BinnedRegion",
    "EnsembleLogRatio",
    "ExactLogRatio",
    "HistFactoryModel",
    "ModelData",
    "ModelParameter",
    "Process",
    "StatModel",
    "UnbinnedData",
    "UnbinnedRegion",
    "UpDownLogRatio",
    "from_pyhf",
]
