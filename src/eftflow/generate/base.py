"""The ``Generator`` protocol: every backend ends in weighted events for every benchmark.

Contract (DESIGN.md §4–5):

* A generator job produces ``n_events`` events for one *sample* (a sampling benchmark, an mℓℓ
  slice, a background process, ...), seeded by :func:`eftflow.generate.seeds.job_seed`.
* Every event carries one weight per benchmark of the setup (physics benchmarks in setup order,
  then nuisance benchmarks), in pb per event, so that the sum over the sample is the cross section
  at that benchmark.
* Parton-level backends (``madgraph``, ``builtin``) write an LHE file (LHEF 3, gzip) whose
  ``<initrwgt>`` weight ids are the benchmark names and whose per-event ``<rwgt>`` weights are those
  weights; the shower stage (Pythia 8) reads it. The ``toy`` backend writes an event store with
  observables directly (there is nothing to shower).
* Provenance (generator name and version, seed, sample, job index, config hash, eftflow version)
  is recorded in the output (LHE header comment block ``<eftflow>`` as JSON, or store attributes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["GenerationJob", "GenerationResult", "Generator"]


@dataclass
class GenerationJob:
    """One generator job: what to generate and where to write it."""

    sample: str
    job_index: int
    n_events: int
    seed: int
    output: Path
    #: the analysis setup (``eftflow.setup.EFTSetup``)
    setup: Any
    #: name of the benchmark the events are sampled at (``None``: backend default / background)
    sampling_benchmark: str | None = None
    #: backend options from the config section of this sample
    options: dict = field(default_factory=dict)
    #: provenance to record (config hash, run name, ...)
    provenance: dict = field(default_factory=dict)


@dataclass
class GenerationResult:
    """What a job produced."""

    output: Path
    n_events: int
    #: cross section per benchmark name, pb
    cross_sections: dict[str, float]
    #: statistical uncertainty per benchmark name, pb
    cross_section_errors: dict[str, float] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """A generator backend. Add a backend by adding a module that implements this."""

    name: str

    def generate(self, job: GenerationJob) -> GenerationResult:
        """Run the job and write ``job.output`` atomically."""
        ...
