"""The error definition UP: how far the objective rises at the edge of a confidence region.

Following the Gemini guide (and Minuit), a region of coverage probability ``1 - alpha`` for ``k``
parameters simultaneously is ``{theta : F(theta) - F_min <= UP}`` with

* ``UP = chi2.ppf(1 - alpha, k)`` for a chi-squared or ``-2 ln L`` objective,
* half of that for a ``-ln L`` objective.

"n sigma" means the coverage of ``+-n`` standard deviations of one Gaussian variable,
``1 - alpha = chi2.cdf(n**2, 1)`` (68.27 %, 95.45 %, 99.73 % for n = 1, 2, 3), whatever ``k``.

Example
-------
>>> round(up(sigma=1, n_params=2), 4)
2.2957
>>> up(sigma=2, kind="nll")
2.0
"""

from __future__ import annotations

import math

from eftflow.errors import InputError

__all__ = ["KINDS", "up", "coverage_of_sigma", "errordef_of", "up_table", "format_up_table"]

#: objective kinds and their UP for 1 sigma in 1 parameter (the Minuit "errordef")
KINDS = {"chi2": 1.0, "-2lnL": 1.0, "nll": 0.5, "-lnL": 0.5}


def errordef_of(kind: str) -> float:
    """Minuit's errordef of an objective kind: 1 for ``chi2``/``-2lnL``, 0.5 for ``nll``/``-lnL``."""
    try:
        return KINDS[kind]
    except KeyError:
        raise InputError(
            f"unknown objective kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind"
        ) from None


def coverage_of_sigma(sigma: float) -> float:
    """Coverage probability of ``+-sigma`` for one Gaussian variable (0.6827 for 1)."""
    if not (math.isfinite(sigma) and sigma > 0):
        raise InputError(f"sigma must be a positive number, got {sigma}", field="sigma")
    return math.erf(sigma / math.sqrt(2.0))


def up(
    *,
    sigma: float | None = None,
    cl: float | None = None,
    n_params: int = 1,
    kind: str = "chi2",
) -> float:
    """UP for ``n_params`` parameters at ``sigma`` standard deviations or coverage ``cl``.

    Parameters
    ----------
    sigma
        Number of standard deviations (converted to a coverage with one degree of freedom).
    cl
        Coverage probability in (0, 1). Give ``sigma`` or ``cl``; neither means 1 sigma.
    n_params
        Number of parameters of the joint region (1 for a MINOS interval, 2 for a contour).
    kind
        ``"chi2"``/``"-2lnL"`` or ``"nll"``/``"-lnL"``.
    """
    from scipy.stats import chi2

    if sigma is not None and cl is not None:
        raise InputError("give either sigma or cl, not both", field="cl")
    if cl is None:
        cl = coverage_of_sigma(1.0 if sigma is None else float(sigma))
    if not 0.0 < cl < 1.0:
        raise InputError(f"coverage probability must be in (0, 1), got {cl}", field="cl")
    if int(n_params) != n_params or n_params < 1:
        raise InputError(f"n_params must be a positive integer, got {n_params}", field="n_params")
    scale = errordef_of(kind)
    if n_params == 1 and sigma is not None:
        return scale * float(sigma) ** 2  # exact, avoids ppf round-off
    return scale * float(chi2.ppf(cl, int(n_params)))


def up_table(
    *, max_params: int = 6, sigmas: tuple[float, ...] = (1.0, 2.0, 3.0), kind: str = "chi2"
) -> dict[int, dict[float, float]]:
    """Gemini's table: ``{k: {n_sigma: UP}}`` for k = 1..``max_params``."""
    return {
        k: {s: up(cl=coverage_of_sigma(s), n_params=k, kind=kind) for s in sigmas}
        for k in range(1, max_params + 1)
    }


def format_up_table(**kwargs) -> str:
    """Readable text of :func:`up_table` (rows: number of parameters)."""
    table = up_table(**kwargs)
    sigmas = next(iter(table.values())).keys()
    head = "k  " + "".join(
        f"{f'{s:g} sigma ({100 * coverage_of_sigma(s):.2f}%)':>22}" for s in sigmas
    )
    rows = [head]
    for k, row in table.items():
        rows.append(f"{k:<3}" + "".join(f"{v:>22.4f}" for v in row.values()))
    return "\n".join(rows)
