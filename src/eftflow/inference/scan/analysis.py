"""Post-processing of printed scans: best fit, profile likelihoods, marginal posteriors.

Weights for marginal posteriors: the ``Posterior`` column when the scanner wrote one (dynesty,
mcmc); for scanners that sample the prior uniformly in the unit cube (random, grid) the
importance weight ``exp(LogLike - max)``; optimisers (de) give profiles only.

Example
-------
>>> out = load_scan("results/scan/example")  # doctest: +SKIP
>>> x, prof = profile_1d(out, "EFT::cW", bins=30)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eftflow.errors import InputError

__all__ = ["ScanOutput", "load_scan", "profile_1d", "profile_2d", "marginal_1d", "marginal_2d"]

PRIOR_SAMPLING = ("random", "grid")


@dataclass
class ScanOutput:
    """Printed rows of a scan and what it reported."""

    rows: dict
    summary: dict
    scanner: str
    directory: Path

    @property
    def valid(self) -> np.ndarray:
        return self.rows["Invalidation Code"][0] == 0

    @property
    def loglike(self) -> np.ndarray:
        return self.rows["LogLike"][0]

    @property
    def parameters(self) -> dict[str, str]:
        """``{"Model::par": printed label}`` of every parameter column."""
        out = {}
        for label in self.rows:
            if (
                label.startswith("#")
                and "::primary_parameters::" in label
                and not label.endswith("_isvalid")
            ):
                model = label.split("_parameters @", 1)[0][1:]
                out[f"{model}::{label.rsplit('::', 1)[1]}"] = label
        return out

    def values(self, name: str) -> np.ndarray:
        """Values of a parameter (``Model::par`` or bare ``par``) or of any printed quantity."""
        params = self.parameters
        if name in self.rows:
            return self.rows[name][0]
        if name in params:
            return self.rows[params[name]][0]
        matches = [q for q in params if q.split("::")[1] == name]
        if len(matches) == 1:
            return self.rows[params[matches[0]]][0]
        raise InputError(
            f"no parameter or quantity {name!r} in the scan output", file=str(self.directory)
        )

    def weights(self) -> np.ndarray | None:
        """Posterior weights per row (see module docstring) or None."""
        if "Posterior" in self.rows:
            w = np.where(self.rows["Posterior"][1], self.rows["Posterior"][0], 0.0)
        elif self.scanner in PRIOR_SAMPLING:
            ll = np.where(self.valid, self.loglike, -np.inf)
            w = np.exp(ll - ll.max())
        else:
            return None
        return np.where(self.valid, w, 0.0)

    def best_fit(self) -> dict[str, float]:
        """Parameter values and LogLike at the highest valid LogLike.

        Raises :class:`InputError` when the scan holds no valid point.
        """
        if not np.any(self.valid):
            raise InputError("the scan holds no valid point: no best fit", file=str(self.directory))
        i = int(np.argmax(np.where(self.valid, self.loglike, -np.inf)))
        out = {q: float(self.rows[lab][0][i]) for q, lab in self.parameters.items()}
        out["LogLike"] = float(self.loglike[i])
        return out


def load_scan(directory: str | Path) -> ScanOutput:
    """Read a scan output directory (HDF5 or ascii)."""
    directory = Path(directory)
    from eftflow.inference.scan.printers.ascii import read_ascii
    from eftflow.inference.scan.printers.hdf5 import read_hdf5

    if (directory / "samples.hdf5").exists():
        rows = read_hdf5(directory / "samples.hdf5")
    elif (directory / "samples.txt").exists():
        rows = read_ascii(directory / "samples.txt")
    else:
        raise InputError("no samples.hdf5 or samples.txt: not a scan output", file=str(directory))
    summary = {}
    if (directory / "summary.json").exists():
        summary = json.loads((directory / "summary.json").read_text())
    scanner = summary.get("info", {}).get("scanner", "")
    if not scanner and (directory / "checkpoint.json").exists():
        scanner = json.loads((directory / "checkpoint.json").read_text()).get("scanner", "")
    return ScanOutput(rows, summary, scanner, directory)


def _edges(v: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = np.min(v), np.max(v)
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def profile_1d(out: ScanOutput, name: str, *, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and the maximum LogLike per bin (NaN where empty)."""
    v, ll = out.values(name)[out.valid], out.loglike[out.valid]
    edges = _edges(v, bins)
    idx = np.clip(np.digitize(v, edges) - 1, 0, bins - 1)
    prof = np.full(bins, -np.inf)
    np.maximum.at(prof, idx, ll)
    prof[~np.isfinite(prof)] = np.nan
    return 0.5 * (edges[1:] + edges[:-1]), prof


def profile_2d(out: ScanOutput, x: str, y: str, *, bins: int = 30):
    """(x centres, y centres, max LogLike per cell (bins_x, bins_y), NaN where empty)."""
    vx, vy, ll = out.values(x)[out.valid], out.values(y)[out.valid], out.loglike[out.valid]
    ex, ey = _edges(vx, bins), _edges(vy, bins)
    ix = np.clip(np.digitize(vx, ex) - 1, 0, bins - 1)
    iy = np.clip(np.digitize(vy, ey) - 1, 0, bins - 1)
    prof = np.full((bins, bins), -np.inf)
    np.maximum.at(prof, (ix, iy), ll)
    prof[~np.isfinite(prof)] = np.nan
    return 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1]), prof


def _need_weights(out: ScanOutput) -> np.ndarray:
    w = out.weights()
    if w is None or not np.any(w > 0):
        raise InputError(
            f"scanner {out.scanner!r} gives no posterior weights (use dynesty, mcmc, random or grid)",
            file=str(out.directory),
        )
    return w


def marginal_1d(out: ScanOutput, name: str, *, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and the marginal posterior density."""
    w = _need_weights(out)
    v = out.values(name)
    sel = w > 0
    hist, edges = np.histogram(v[sel], bins=_edges(v[sel], bins), weights=w[sel], density=True)
    return 0.5 * (edges[1:] + edges[:-1]), hist


def marginal_2d(out: ScanOutput, x: str, y: str, *, bins: int = 30):
    """(x centres, y centres, 2-D marginal posterior density)."""
    w = _need_weights(out)
    vx, vy = out.values(x), out.values(y)
    sel = w > 0
    hist, ex, ey = np.histogram2d(
        vx[sel],
        vy[sel],
        bins=[_edges(vx[sel], bins), _edges(vy[sel], bins)],
        weights=w[sel],
        density=True,
    )
    return 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1]), hist
