"""eftflow.sampling: θ/ν specifications, cross sections, and sample augmentation ("gold mining").

See ``docs/augmentation.md``."""

from eftflow.sampling.augment import SampleAugmenter
from eftflow.sampling.partitions import partition_bounds
from eftflow.sampling.specs import (
    benchmark,
    benchmarks,
    grid,
    iid_nuisance_parameters,
    morphing_point,
    morphing_points,
    nominal_nuisance_parameters,
    nuisance_point,
    random_morphing_points,
)
from eftflow.sampling.xsec import cross_sections, xsec_gradients

__all__ = [
    "SampleAugmenter",
    "benchmark",
    "benchmarks",
    "cross_sections",
    "grid",
    "iid_nuisance_parameters",
    "morphing_point",
    "morphing_points",
    "nominal_nuisance_parameters",
    "nuisance_point",
    "partition_bounds",
    "random_morphing_points",
    "xsec_gradients",
]
