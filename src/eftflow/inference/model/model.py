"""One statistical model: binned (HistFactory) and unbinned (learned ratio) regions, shared
parameters, constraint terms, Asimov / observed / pseudo data and a batched torch NLL.

``-ln L(φ) = Σ_binned −ln Pois(n|λ(φ)) + Σ_unbinned NLL_region(φ) − Σ_constraints ln c(a|φ)``

Parameters are shared by name across regions (a luminosity or a normalisation nuisance acting
on a binned control region and on the unbinned signal region is one parameter). Constraint terms
(:class:`~eftflow.inference.model.params.ConstraintSet`) are counted once, with auxiliary data
that toys resample.

Batched evaluation: :meth:`StatModel.nll` takes parameters of shape (B, P) and data with T toys
(T = B, or either of them 1) and returns (max(B, T),) in one vectorised pass, on the model's
device (CUDA when available unless told otherwise). :meth:`StatModel.objective` is the numpy
path for the :class:`~eftflow.inference.fit.Fit` front end.

Example
-------
>>> import numpy as np
>>> from eftflow.inference.model import BinnedRegion, StatModel, from_pyhf
>>> ws = {"channels": [{"name": "sr", "samples": [
...     {"name": "s", "data": [5.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
...     {"name": "b", "data": [50.0], "modifiers": []}]}],
...   "observations": [{"name": "sr", "data": [55.0]}],
...   "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}
>>> model = StatModel([BinnedRegion("sr", from_pyhf(ws))], poi="mu", device="cpu")
>>> data = model.asimov({"mu": 2.0})
>>> float(data.regions["sr"][0, 0])
60.0
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError

from .params import ConstraintSet, ModelParameter, merge_parameters
from .unbinned import UnbinnedData

__all__ = ["BinnedRegion", "ModelData", "StatModel"]

log = logging.getLogger(__name__)


class BinnedRegion:
    """A HistFactory model as a region of a :class:`StatModel`."""

    kind = "binned"

    def __init__(self, name: str, hf):
        self.name, self.hf = name, hf
        self.parameter_names = hf.parameter_names

    def declared_parameters(self) -> list[ModelParameter]:
        return list(self.hf.parameters)

    def nll_main(self, pars, counts):
        return -self.hf.logpdf_main(pars, counts)

    def expected_weights(self, pars):
        return self.hf.expected(pars)

    def check_data(self, data) -> None:
        if tuple(data.shape[-1:]) != (self.hf.n_bins,):
            raise InputError(
                f"region {self.name!r} has {self.hf.n_bins} bins, the data {tuple(data.shape)}",
                field=self.name,
            )


@dataclass
class ModelData:
    """Data of every region (tensors with a leading toy axis T) and the auxiliary data."""

    regions: dict
    aux: object

    @property
    def n_toys(self) -> int:
        return int(self.aux.shape[0])

    def select(self, index) -> ModelData:
        """A sub-batch of toys (``index``: slice or integer tensor)."""
        regions = {}
        for k, v in self.regions.items():
            if isinstance(v, UnbinnedData) and np.ndim(v.x) == 3:  # one event set per toy
                regions[k] = UnbinnedData(v.weights[index], v.x[index], {})
            elif isinstance(v, UnbinnedData):
                regions[k] = UnbinnedData(v.weights[index], v.x, v._bound)
            else:
                regions[k] = v[index]
        return ModelData(regions, self.aux[index])


class StatModel:
    """The combined model (see the module docstring).

    Parameters
    ----------
    regions
        :class:`BinnedRegion` and :class:`~eftflow.inference.model.unbinned.UnbinnedRegion`.
    parameters
        Declarations of the parameters the unbinned estimators use (θ with bounds; ν with
        their Gaussian constraints); binned and region-level ones are added automatically.
    poi
        Name(s) of the parameter(s) of interest.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
    """

    def __init__(
        self,
        regions: Sequence,
        parameters: Sequence[ModelParameter] = (),
        *,
        poi: str | Sequence[str] | None = None,
        device: str = "auto",
    ):
        import torch

        if not regions:
            raise InputError("a model needs at least one region", field="regions")
        names = [r.name for r in regions]
        if len(set(names)) != len(names):
            raise InputError(f"duplicate region names in {names}", field="regions")
        self.regions = list(regions)
        pars = merge_parameters([list(parameters)] + [r.declared_parameters() for r in regions])
        known = {p.name for p in pars}
        for r in regions:
            missing = [n for n in r.parameter_names if n not in known]
            if missing:
                raise InputError(
                    f"region {r.name!r} uses undeclared parameter(s) {missing}; declare them "
                    "in 'parameters'",
                    field=f"regions.{r.name}",
                )
        pois = [poi] if isinstance(poi, str) else list(poi or [])
        if not pois:
            pois = [p.name for p in pars if p.kind == "poi"]
        if not pois:
            raise InputError("the model has no parameter of interest", field="poi")
        for n in pois:
            if n not in known:
                raise InputError(
                    f"parameter of interest {n!r} is not a model parameter", field="poi"
                )
        for p in pars:
            if p.name in pois:
                p.kind = "poi"
        self.parameters = pars
        self.poi = pois
        self.names = [p.name for p in pars]
        self.dtype = torch.float64
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self._index = {
            r.name: torch.as_tensor(
                [self.names.index(n) for n in r.parameter_names],
                dtype=torch.int64,
                device=self.device,
            )
            for r in regions
        }
        self.constraints = ConstraintSet(pars)

    # -- parameter helpers ------------------------------------------------------------------
    @property
    def init(self) -> np.ndarray:
        return np.array([p.init for p in self.parameters])

    @property
    def lower(self) -> np.ndarray:
        return np.array([p.lower for p in self.parameters])

    @property
    def upper(self) -> np.ndarray:
        return np.array([p.upper for p in self.parameters])

    @property
    def fixed(self) -> np.ndarray:
        return np.array([p.fixed for p in self.parameters])

    def index(self, name: str) -> int:
        if name not in self.names:
            raise InputError(
                f"unknown parameter {name!r}; known: {', '.join(self.names)}", field=name
            )
        return self.names.index(name)

    def vector(self, values: Mapping[str, float] | Sequence[float] | None = None) -> np.ndarray:
        """Full parameter vector from ``{name: value}`` (others at their initial values)."""
        if values is None:
            return self.init
        if isinstance(values, Mapping):
            v = self.init
            for k, x in values.items():
                v[self.index(k)] = float(x)
            return v
        v = np.array(values, dtype=float)  # a copy: callers set entries of it
        if v.shape[-1:] != (len(self.names),):
            raise InputError(
                f"expected {len(self.names)} parameter values ({', '.join(self.names)}), got "
                f"shape {v.shape}",
                field="parameters",
            )
        return v

    def check_in_bounds(self, pars: np.ndarray, what: str = "parameters") -> None:
        pars = np.atleast_2d(pars)
        bad = (pars < self.lower - 1e-12) | (pars > self.upper + 1e-12)
        if bad.any():
            i = int(np.argwhere(bad)[0][1])
            raise InputError(
                f"{self.names[i]} = {pars[np.argwhere(bad)[0][0], i]:.6g} is outside its bounds "
                f"[{self.lower[i]:.6g}, {self.upper[i]:.6g}]",
                field=f"{what}.{self.names[i]}",
            )

    def tensor(self, pars):
        import torch

        return torch.as_tensor(
            np.asarray(pars, dtype=float) if not torch.is_tensor(pars) else pars,
            dtype=self.dtype,
            device=self.device,
        )

    # -- likelihood ------------------------------------------------------------------------
    def nll(self, pars, data: ModelData):
        """Batched −ln L: ``pars`` (B, P) tensor, data with T toys → (max(B, T),)."""
        if pars.ndim != 2 or pars.shape[1] != len(self.names):
            raise InputError(
                f"expected parameters of shape (batch, {len(self.names)}), got {tuple(pars.shape)}",
                field="parameters",
            )
        b, t = pars.shape[0], data.n_toys
        if b != t and 1 not in (b, t):
            raise InputError(
                f"{b} parameter points for {t} toys: give one or as many", field="parameters"
            )
        total = -self.constraints.logpdf(pars, data.aux)
        for r in self.regions:
            total = total + r.nll_main(pars[:, self._index[r.name]], data.regions[r.name])
        return total

    def objective(self, data: ModelData) -> callable:
        """The numpy objective ``f(values (P,)) -> float`` (−ln L) for the Fit front end."""
        import torch

        def f(values):
            with torch.no_grad():
                return float(self.nll(self.tensor(np.asarray(values)[None]), data)[0])

        return f

    def gradient(self, data: ModelData) -> callable:
        """``g(values) -> (P,)``: the gradient of :meth:`objective` by torch autograd."""
        import torch

        def g(values):
            p = self.tensor(np.asarray(values)[None]).clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.nll(p, data).sum(), p)
            return grad[0].cpu().numpy()

        return g

    # -- data ------------------------------------------------------------------------------
    def _expected(self, pars):
        return {r.name: r.expected_weights(pars[:, self._index[r.name]]) for r in self.regions}

    def asimov(self, values=None) -> ModelData:
        """Asimov data (expected counts/weights and auxiliary data) at ``values``."""
        import torch

        v = self.vector(values)
        self.check_in_bounds(v)
        p = self.tensor(v[None])
        with torch.no_grad():
            regions = {}
            for name, w in self._expected(p).items():
                reg = self._region(name)
                regions[name] = UnbinnedData(w) if reg.kind == "unbinned" else w
        aux = self.tensor(self.constraints.expected_aux(v[None]))
        return ModelData(regions, aux)

    def _region(self, name):
        return next(r for r in self.regions if r.name == name)

    def observed(
        self,
        events: Mapping[str, np.ndarray] | None = None,
        weights: Mapping[str, np.ndarray] | None = None,
        counts: Mapping[str, np.ndarray] | None = None,
    ) -> ModelData:
        """Observed data: binned counts (default: the workspace observations), unbinned
        ``events`` (n, d) per region with optional ``weights``; nominal auxiliary data."""
        regions = {}
        events, weights, counts = events or {}, weights or {}, counts or {}
        for r in self.regions:
            if r.kind == "binned":
                c = counts.get(r.name, r.hf.observed)
                regions[r.name] = self.tensor(np.asarray(c, float)[None])
            else:
                if r.name not in events:
                    raise InputError(
                        f"no observed events for unbinned region {r.name!r}",
                        field=f"events.{r.name}",
                    )
                x = np.asarray(events[r.name], float)
                x = x[:, None] if x.ndim == 1 else x
                w = np.asarray(weights.get(r.name, np.ones(len(x))), float)
                regions[r.name] = UnbinnedData(self.tensor(w[None]), x)
            r.check_data(regions[r.name])
        return ModelData(regions, self.tensor(self.constraints.nominal_aux[None]))

    def toys(self, values, n_toys: int, rng: np.random.Generator) -> ModelData:
        """Pseudo-data: Poisson counts of the expected bins / pool weights and resampled
        auxiliary data. ``values``: one point (P,) / mapping, or G points (G, P) giving
        G × ``n_toys`` toys (point-major)."""
        import torch

        if isinstance(values, Mapping) or values is None:
            pts = self.vector(values)[None]
        else:
            pts = np.atleast_2d(self.vector(values))
        self.check_in_bounds(pts, "toys")
        with torch.no_grad():
            exp = self._expected(self.tensor(pts))
        regions = {}
        for name, lam in exp.items():
            lam = lam.cpu().numpy()
            lam = np.repeat(lam, n_toys, axis=0)
            k = self.tensor(rng.poisson(lam).astype(float))
            regions[name] = UnbinnedData(k) if self._region(name).kind == "unbinned" else k
        aux = np.concatenate([self.constraints.sample_aux(p, n_toys, rng) for p in pts])
        return ModelData(regions, self.tensor(aux))

    def bootstrap(self, data: ModelData, n_toys: int, rng: np.random.Generator) -> ModelData:
        """Poisson-weights bootstrap of ``data`` (one data set): each event weight / bin count
        w becomes Poisson(w); auxiliary data stay as observed."""
        if data.n_toys != 1:
            raise InputError("bootstrap one data set at a time", field="data")
        regions = {}
        for name, v in data.regions.items():
            if isinstance(v, UnbinnedData):
                w = np.repeat(v.weights.cpu().numpy(), n_toys, 0)
                regions[name] = UnbinnedData(
                    self.tensor(rng.poisson(w).astype(float)), v.x, v._bound
                )
            else:
                c = np.repeat(v.cpu().numpy(), n_toys, 0)
                regions[name] = self.tensor(rng.poisson(c).astype(float))
        return ModelData(regions, data.aux.expand(n_toys, -1).clone())

    def fit_parameters(self, *, start=None, fix: Mapping[str, float] | None = None) -> list:
        """:class:`~eftflow.inference.fit.Parameter` objects for the Fit front end."""
        from eftflow.inference.fit import Parameter

        start = self.vector(start)
        out = []
        for p, v in zip(self.parameters, start):
            scale = (
                p.sigma
                if p.constraint == "normal"
                else (1.0 / np.sqrt(p.tau) if p.constraint == "poisson" else None)
            )
            fixed = p.fixed or (fix is not None and p.name in fix)
            val = fix[p.name] if fix is not None and p.name in fix else v
            if scale is None:
                width = p.upper - p.lower
                scale = 0.1 if not np.isfinite(width) else min(0.1, 0.05 * width)
            out.append(
                Parameter(
                    p.name,
                    float(val),
                    scale=float(scale),
                    lower=p.lower,
                    upper=p.upper,
                    fixed=bool(fixed),
                )
            )
        return out
