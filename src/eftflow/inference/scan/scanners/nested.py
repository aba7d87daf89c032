"""``dynesty``: nested sampling (static ``NestedSampler``), with the evidence and its error.

dynesty samples the unit cube directly (identity prior transform; our transform runs inside
the likelihood), so each dead point is an evaluated row and its importance weight is printed as
``Posterior`` by (MPIrank, pointID). The initial live points are drawn from the scan's
generator and evaluated as one batch (spread over MPI ranks); later points are proposed and
evaluated one at a time by dynesty on rank 0. dynesty's ``rstate`` is the scan's generator, so a
resumed scan replays the same sequence.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from eftflow.inference.scan.scanners.base import BaseScanner, ScanResult, register_scanner

__all__ = ["DynestyScanner"]

log = logging.getLogger(__name__)


@register_scanner("dynesty")
class DynestyScanner(BaseScanner):
    """Options: ``nlive``, ``dlogz``, ``bound``, ``sample``, ``maxcall``."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "nlive": {"type": "integer", "minimum": 2, "default": 400},
            "dlogz": {"type": "number", "exclusiveMinimum": 0, "default": 0.1},
            "bound": {"enum": ["none", "single", "multi", "balls", "cubes"], "default": "multi"},
            "sample": {"enum": ["auto", "unif", "rwalk", "slice", "rslice"], "default": "auto"},
            "maxcall": {"type": ["integer", "null"], "minimum": 1, "default": None},
        },
    }

    def run(self, problem, options) -> ScanResult:
        import dynesty

        d = problem.ndim
        id_of: dict[bytes, tuple[int, int]] = {}

        def loglike(u):
            ll, ids = problem.evaluate(np.asarray(u)[None, :])
            id_of[np.asarray(u, dtype=float).tobytes()] = (int(ids[0, 0]), int(ids[0, 1]))
            return float(ll[0])

        live_u = problem.rng.random((options["nlive"], d))
        live_ll, live_ids = problem.evaluate(live_u)
        for u, i in zip(live_u, live_ids):
            id_of[u.tobytes()] = (int(i[0]), int(i[1]))
        sampler = dynesty.NestedSampler(
            loglike,
            lambda u: u,
            d,
            nlive=options["nlive"],
            bound=options["bound"],
            sample=options["sample"],
            rstate=problem.rng,
            live_points=[live_u.copy(), live_u.copy(), live_ll.copy()],
        )
        _call_directly(sampler, loglike)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sampler.run_nested(
                dlogz=options["dlogz"], maxcall=options["maxcall"], print_progress=False
            )
        for msg in {str(w.message) for w in caught}:
            log.warning("dynesty: %s", msg)
        res = sampler.results
        w = res.importance_weights()
        weights: dict[tuple[int, int], float] = {}
        missing = 0
        for u, wi in zip(np.asarray(res.samples_u, dtype=float), w):
            key = id_of.get(u.tobytes())
            if key is None:
                missing += 1
                continue
            weights[key] = weights.get(key, 0.0) + float(wi)
        if missing:
            log.warning("%d dynesty samples could not be matched to printed points", missing)
        i = int(np.argmax(res.logl))
        return ScanResult(
            info={
                "logZ": float(res.logz[-1]),
                "logZerr": float(res.logzerr[-1]),
                "n_calls": int(np.sum(res.ncall)),
                "efficiency": float(res.eff),
                "best_loglike": float(res.logl[i]),
                "best_unit": np.asarray(res.samples_u[i]).tolist(),
            },
            weights=weights,
        )


def _call_directly(sampler, loglike) -> None:
    """Let ``sampler`` call ``loglike`` without dynesty's wrapper around it.

    That wrapper prints the point and a traceback for every exception before re-raising it, so
    a scan stopped on a signal (:class:`ScanInterrupted`, raised from the likelihood) or by an
    eftflow error would dump a traceback before its one-line message. Our likelihood does not
    modify its argument (the wrapper's copy is not needed). If dynesty's internals differ from
    what this expects, the wrapper stays (the only cost: those tracebacks).
    """
    holder = getattr(sampler, "loglikelihood", None)
    wrapped = getattr(holder, "loglikelihood", None)
    if wrapped is None or getattr(wrapped, "func", None) is not loglike:
        log.debug("dynesty: likelihood wrapper not found; its tracebacks stay")
        return
    holder.loglikelihood = loglike
