"""``random``: points drawn uniformly in the unit cube, i.e. from the prior."""

from __future__ import annotations

import numpy as np

from eftflow.inference.scan.scanners.base import (
    BaseScanner,
    ScanResult,
    batch_schema,
    register_scanner,
)

__all__ = ["RandomScanner"]


@register_scanner("random")
class RandomScanner(BaseScanner):
    """Draw ``n_points`` from the prior in batches of ``batch_size``."""

    options_schema = batch_schema(n_points={"type": "integer", "minimum": 1, "default": 1000})

    def run(self, problem, options) -> ScanResult:
        n, b = options["n_points"], options["batch_size"]
        best = (-np.inf, None)
        done = 0
        while done < n:
            k = min(b, n - done)
            u = problem.rng.random((k, problem.ndim))
            ll, _ = problem.evaluate(u)
            i = int(np.argmax(ll))
            if ll[i] > best[0]:
                best = (float(ll[i]), u[i].tolist())
            done += k
        return ScanResult(info={"n_points": n, "best_loglike": best[0], "best_unit": best[1]})
