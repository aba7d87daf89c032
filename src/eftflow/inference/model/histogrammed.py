"""An unbinned region's pool histogrammed in one observable: the binned fit of the same events.

Used to compare the sensitivity of the unbinned fit with that of any single-histogram fit of the
same events (``benchmarks/model.py``, tests/model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from eftflow.errors import InputError

from .histfactory import code4_coefficients, interp_code4
from .params import ModelParameter

if TYPE_CHECKING:  # pragma: no cover
    from .unbinned import UnbinnedRegion

__all__ = ["HistogrammedRegion"]


class HistogrammedRegion:
    """An unbinned region's pool histogrammed in one observable: the binned fit of the same
    events, for sensitivity comparisons.

    The expected count of bin b is the sum of the region's expected pool weights in b. With
    ``mode="exact"`` every parameter acts through those sums exactly (the best any binned fit of
    these events can do); with ``mode="histosys"`` the parameters in ``histosys`` act as
    HistFactory would model them: per-bin relative templates at ±1 (taken at ``reference``,
    the other parameters' nominal values) interpolated with code 4, multiplying the expectation
    at ν = 0. Data are bin counts (T, n_bins), as for :class:`~eftflow.inference.model.model.
    BinnedRegion`.
    """

    kind = "binned"

    def __init__(
        self,
        name: str,
        region: UnbinnedRegion,
        edges,
        *,
        column: int = 0,
        mode: str = "exact",
        histosys: Sequence[str] = (),
        reference=None,
    ):
        if mode not in ("exact", "histosys"):
            raise InputError(f"unknown mode {mode!r}; use exact or histosys", field="mode")
        self.name, self.region, self.mode = name, region, mode
        edges = np.asarray(edges, float)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise InputError("bin edges must be increasing", field=f"{name}.edges")
        v = region.pool[:, column]
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
        self.n_bins = len(edges) - 1
        self._onehot = np.zeros((len(v), self.n_bins))
        self._onehot[np.arange(len(v)), idx] = 1.0
        self.parameter_names = list(region.parameter_names)
        unknown = [n for n in histosys if n not in self.parameter_names]
        if unknown:
            raise InputError(f"histosys parameters {unknown} are not used", field=f"{name}")
        self.histosys = list(histosys)
        self.reference = reference
        self._templates = None

    def declared_parameters(self) -> list[ModelParameter]:
        return self.region.declared_parameters()

    def _sums(self, pars):
        import torch

        w = self.region.expected_weights_grad(pars)
        return w @ torch.as_tensor(self._onehot, dtype=pars.dtype, device=pars.device)

    def expected(self, pars):
        import torch

        if self.mode == "exact" or not self.histosys:
            return self._sums(pars)
        k = [self.parameter_names.index(n) for n in self.histosys]
        if self._templates is None:
            ref = torch.zeros((1, len(self.parameter_names)), dtype=pars.dtype)
            if self.reference is not None:
                ref = torch.as_tensor(np.asarray(self.reference, float)[None], dtype=pars.dtype)
            rows = [ref]
            for j in k:
                for s in (1.0, -1.0):
                    r = ref.clone()
                    r[0, j] = s
                    rows.append(r)
            with torch.no_grad():
                h = self._sums(torch.cat(rows).to(pars.device))
            nom = torch.clamp(h[0], min=1e-300)
            hi = (h[1::2] / nom).cpu().numpy()
            lo = (h[2::2] / nom).cpu().numpy()
            self._templates = (hi, lo, code4_coefficients(hi, lo))
        hi, lo, coef = self._templates
        base = pars.clone()
        base[:, k] = 0.0
        out = self._sums(base)
        for i, j in enumerate(k):
            c = torch.as_tensor(coef[:, i][:, None, :], dtype=pars.dtype, device=pars.device)
            hi_t = torch.as_tensor(hi[i][None], dtype=pars.dtype, device=pars.device)
            lo_t = torch.as_tensor(lo[i][None], dtype=pars.dtype, device=pars.device)
            out = out * interp_code4(pars[:, j : j + 1], hi_t, lo_t, c)
        return out

    def nll_main(self, pars, counts):
        import torch

        lam = torch.clamp(self.expected(pars), min=1e-300)
        return (lam - torch.xlogy(counts, lam)).sum(-1)

    def expected_weights(self, pars):
        import torch

        with torch.no_grad():
            return self.expected(pars)

    def check_data(self, data) -> None:
        if tuple(data.shape[-1:]) != (self.n_bins,):
            raise InputError(
                f"region {self.name!r} has {self.n_bins} bins, the data {tuple(data.shape)}",
                field=self.name,
            )
