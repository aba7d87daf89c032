"""Per-job seeds derived from (global seed, sample, job index), stable across runs and machines."""

from __future__ import annotations

import hashlib

__all__ = ["job_seed"]


def job_seed(
    global_seed: int,
    sample: str,
    job_index: int,
    *,
    stage: str = "generate",
    modulus: int = 900_000_000,
) -> int:
    """A seed in [1, modulus] unique to (global seed, stage, sample, job index).

    The default modulus keeps it valid for Pythia (``Random:seed`` ≤ 900 000 000) and MadGraph
    (``iseed``). Different jobs get different seeds with overwhelming probability (a hash), and the
    same job always gets the same seed.

    Example
    -------
    >>> job_seed(1, "sm", 0) == job_seed(1, "sm", 0) and job_seed(1, "sm", 0) != job_seed(1, "sm", 1)
    True
    """
    key = f"{int(global_seed)}|{stage}|{sample}|{int(job_index)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % modulus + 1
