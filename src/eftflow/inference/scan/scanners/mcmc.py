"""``mcmc``: adaptive Metropolis (Haario et al. 2001) with parallel chains.

``n_chains`` chains move together, so each step is one batch of ``n_chains`` proposals (spread
over MPI ranks). The proposal is Gaussian in the unit cube (where the prior is uniform, so the
target is the likelihood); after ``adapt_start`` steps its covariance is
``2.38² / d · Cov(history) + ε I`` from all chains' past states. Proposals outside the cube are
rejected without evaluation. Posterior weights: how often each evaluated point was a chain state
after the burn-in. ``info`` reports the acceptance rate and Gelman–Rubin ``R - 1`` per parameter.
"""

from __future__ import annotations

import numpy as np

from eftflow.inference.scan.scanners.base import BaseScanner, ScanResult, register_scanner

__all__ = ["AdaptiveMetropolisScanner", "gelman_rubin"]


def gelman_rubin(chains: np.ndarray) -> np.ndarray:
    """``R - 1`` per parameter for ``chains`` of shape (n_chains, n_steps, ndim)."""
    m, n, _ = chains.shape
    if m < 2 or n < 2:
        return np.full(chains.shape[2], np.nan)
    means = chains.mean(axis=1)
    w = chains.var(axis=1, ddof=1).mean(axis=0)
    b = n * means.var(axis=0, ddof=1)
    var = (n - 1) / n * w + b / n
    with np.errstate(all="ignore"):
        return np.sqrt(var / w) - 1.0


@register_scanner("mcmc")
class AdaptiveMetropolisScanner(BaseScanner):
    """Options: ``n_chains``, ``n_steps``, ``burn_in`` (fraction), ``adapt_start``,
    ``initial_scale`` (proposal width in the unit cube)."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "n_chains": {"type": "integer", "minimum": 1, "default": 4},
            "n_steps": {"type": "integer", "minimum": 2, "default": 2000},
            "burn_in": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.25},
            "adapt_start": {"type": "integer", "minimum": 2, "default": 200},
            "initial_scale": {"type": "number", "exclusiveMinimum": 0, "default": 0.05},
        },
    }

    def run(self, problem, options) -> ScanResult:
        rng, d = problem.rng, problem.ndim
        m, n_steps = options["n_chains"], options["n_steps"]
        burn = int(options["burn_in"] * n_steps)
        x = rng.random((m, d))
        ll, ids = problem.evaluate(x)
        ids = ids.copy()
        chol = np.eye(d) * options["initial_scale"]
        hist = np.empty((n_steps, m, d))
        weights: dict[tuple[int, int], float] = {}
        accepted = 0
        proposed = 0
        best = (float(ll.max()), x[int(np.argmax(ll))].tolist())
        for step in range(n_steps):
            if step >= options["adapt_start"] and step % 10 == 0:
                past = hist[:step].reshape(-1, d)
                cov = np.atleast_2d(np.cov(past, rowvar=False)) * (2.38**2 / d) + 1e-10 * np.eye(d)
                try:
                    chol = np.linalg.cholesky(cov)
                except np.linalg.LinAlgError:
                    pass
            prop = x + rng.standard_normal((m, d)) @ chol.T
            inside = np.all((prop > 0) & (prop < 1), axis=1)
            logu = np.log(rng.random(m))
            if inside.any():
                llp, idp = problem.evaluate(prop[inside])
                full_ll = np.full(m, -np.inf)
                full_ll[inside] = llp
                full_id = np.zeros((m, 2), dtype=np.int64)
                full_id[inside] = idp
                acc = inside & (logu < full_ll - ll)
                x[acc], ll[acc], ids[acc] = prop[acc], full_ll[acc], full_id[acc]
                accepted += int(acc.sum())
                if llp.max() > best[0]:
                    best = (float(llp.max()), prop[inside][int(np.argmax(llp))].tolist())
            proposed += m
            hist[step] = x
            if step >= burn:
                for r, p in ids:
                    key = (int(r), int(p))
                    weights[key] = weights.get(key, 0.0) + 1.0
        rhat = gelman_rubin(np.transpose(hist[burn:], (1, 0, 2)))
        return ScanResult(
            info={
                "acceptance": accepted / max(proposed, 1),
                "R_minus_1": [float(v) for v in rhat],
                "best_loglike": best[0],
                "best_unit": best[1],
            },
            weights=weights,
        )
