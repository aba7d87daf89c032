"""Fit front end: named parameters, iminuit/SciPy backends, constraints, MINOS and contours.

See ``docs/statistics.md``. The main entry point is :class:`Fit`.
"""

from __future__ import annotations

from .backends import BACKENDS, get_backend
from .constraints import InfeasibleConstraintError, LinearConstraint, NonlinearConstraint
from .core import Fit
from .errordef import coverage_of_sigma, format_up_table, up, up_table
from .parameters import Parameter, Parameters
from .result import (
    ConfidenceResult,
    ContourResult,
    CovarianceResult,
    FitResult,
    OptimizeResult,
    ProfileResult,
)

__all__ = [
    "BACKENDS",
    "ConfidenceResult",
    "ContourResult",
    "CovarianceResult",
    "Fit",
    "FitResult",
    "InfeasibleConstraintError",
    "LinearConstraint",
    "NonlinearConstraint",
    "OptimizeResult",
    "Parameter",
    "Parameters",
    "ProfileResult",
    "coverage_of_sigma",
    "format_up_table",
    "get_backend",
    "up",
    "up_table",
]
