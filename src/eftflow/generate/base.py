"""The ``Generator`` protocol: every backend ends in weighted events for every benchmark.

Contract (docs/layout.md):

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

import numpy as np

__all__ = ["GenerationJob", "GenerationResult", "Generator", "check_count"]


def check_count(
    value, *, field: str, file: str | None = None, minimum: int = 1, allow_none: bool = False
) -> int | None:
    """``value`` as an int >= ``minimum`` (a count: chunk_size, batch_size, max_events, ...).

    Raises
    ------
    ConfigError
        Naming ``file`` and ``field`` when ``value`` is not an integer (booleans and strings
        included) or is below ``minimum``.

    Example
    -------
    >>> check_count(500, field="shower.batch_size")
    500
    >>> check_count(0, field="shower.batch_size")
    Traceback (most recent call last):
    ...
    eftflow.errors.ConfigError: shower.batch_size: must be an integer >= 1, got 0
    """
    from eftflow.errors import ConfigError

    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if isinstance(value, float) and value.is_integer():
        ok, value = True, int(value)
    if not ok or value < minimum:
        raise ConfigError(
            f"must be an integer >= {minimum}{' or null' if allow_none else ''}, got {value!r}",
            file=file,
            field=field,
        )
    return int(value)


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

    def __post_init__(self):
        backend = (self.provenance or {}).get("backend", "<backend>")
        if "chunk_size" in (self.options or {}):
            check_count(self.options["chunk_size"], field=f"generation.{backend}.chunk_size")


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
