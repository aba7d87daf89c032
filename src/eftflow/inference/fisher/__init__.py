"""Fisher information from weighted events (truth, rate, histograms, per-bin), its covariance, and
operations on Fisher matrices (profile, project, constraints). See ``docs/fisher.md``."""

from eftflow.inference.fisher.information import FisherInformation, full_information_from_scores
from eftflow.inference.fisher.manipulate import (
    expected_error,
    nuisance_constraint_information,
    profile_information,
    project_information,
    sample_information,
)
from eftflow.inference.fisher.result import FisherResult

__all__ = [
    "expected_error",
    "FisherInformation",
    "FisherResult",
    "full_information_from_scores",
    "nuisance_constraint_information",
    "profile_information",
    "project_information",
    "sample_information",
]
