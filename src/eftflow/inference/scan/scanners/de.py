"""``de``: differential evolution (scipy), each generation evaluated as one batch.

scipy's ``differential_evolution`` runs with ``vectorized=True`` and ``updating="deferred"``
so that the whole population of a generation reaches the evaluator at once (and is spread over
the MPI ranks). It maximises LogLike over the unit cube; no posterior weights (a profile
likelihood scanner).
"""

from __future__ import annotations

import numpy as np

from eftflow.inference.scan.scanners.base import BaseScanner, ScanResult, register_scanner

__all__ = ["DifferentialEvolutionScanner"]


@register_scanner("de")
class DifferentialEvolutionScanner(BaseScanner):
    """Options: ``popsize`` (multiplier of ndim, as scipy), ``maxiter``, ``tol``,
    ``mutation``, ``recombination``, ``strategy``."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "popsize": {"type": "integer", "minimum": 2, "default": 15},
            "maxiter": {"type": "integer", "minimum": 1, "default": 200},
            "tol": {"type": "number", "minimum": 0, "default": 1e-3},
            "mutation": {
                "oneOf": [
                    {"type": "number", "minimum": 0, "maximum": 2},
                    {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                ],
                "default": [0.5, 1.0],
            },
            "recombination": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.7},
            "strategy": {
                "enum": ["best1bin", "rand1bin", "currenttobest1bin", "best2bin", "rand2bin"],
                "default": "best1bin",
            },
        },
    }

    def run(self, problem, options) -> ScanResult:
        from scipy.optimize import differential_evolution

        def neg(x):  # x: (ndim, S)
            ll, _ = problem.evaluate(np.asarray(x).T)
            return -ll

        mutation = options["mutation"]
        res = differential_evolution(
            neg,
            bounds=[(0.0, 1.0)] * problem.ndim,
            strategy=options["strategy"],
            maxiter=options["maxiter"],
            popsize=options["popsize"],
            tol=options["tol"],
            mutation=tuple(mutation) if isinstance(mutation, list) else mutation,
            recombination=options["recombination"],
            rng=problem.rng,
            polish=False,
            vectorized=True,
            updating="deferred",
        )
        return ScanResult(
            info={
                "best_loglike": float(-res.fun),
                "best_unit": np.asarray(res.x).tolist(),
                "generations": int(res.nit),
                "converged": bool(res.success),
                "message": str(res.message),
            }
        )
