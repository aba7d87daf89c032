r"""Unbinned regions: per-event learned (or exact) log-ratios in an extended likelihood.

The likelihood
--------------
A region holds processes c with expected yields ν_c(θ,ν) and per-event log-ratios
log r_c(x|θ,ν) = log p_c(x|θ,ν)/p_ref(x) against one reference density p_ref (the density the
*pool* of reference events was drawn from). The events of the data set carry weights w_i
(1 for observed events; Poisson counts for pseudo-data on the pool; expected counts for
Asimov data). The negative log-likelihood is

.. math::

    -\ln L = \sum_c \nu_c - \sum_i w_i \ln\Bigl(\sum_c \nu_c\, \hat r_c(x_i)\Bigr),
    \qquad \hat r_c(x) = \frac{r_c(x)}{\langle r_c \rangle_\mathrm{pool}},
    \quad \langle r_c \rangle_\mathrm{pool} = \sum_j a_j r_c(x_j),

i.e. ``ν_tot − Σ_i w_i log(ν_tot p(x_i)/p_ref(x_i))`` with ν_tot = Σ_c ν_c and
p = Σ_c ν_c p_c/ν_tot, dropping ``−Σ_i w_i log p_ref(x_i)`` and ``Σ_i log w_i!`` which do not
depend on the parameters. ``a_j`` are the normalised pool weights (Σ a = 1).

*Pool normalisation* (``normalise=True``, the default) divides each r_c by its mean over the
reference pool, so that the model density is exactly normalised on the pool even when the
estimator is not (an up/down-interpolated factor, a network with a small bias in its
normalisation). Asimov data and toys are then drawn from exactly this model (expected /
Poisson counts on the pool), which makes the Asimov fit close *exactly*: the NLL is a
cross-entropy between the pool distributions at the true and the fitted point, minimal where they
agree. With ``normalise=False`` the raw r_c is used (the ATLAS form).

Log-ratio providers
-------------------
* :class:`ExactLogRatio` — a closed form in torch (the analytic toy).
* :class:`EnsembleLogRatio` — an ensemble of :class:`~eftflow.ml.models.RatioEstimator`
  parameterised in (θ, ν): systematics approach (a), one network for all nuisances.
* :class:`UpDownLogRatio` — a nominal provider times per-nuisance up/down ratio networks
  g(x|ν±) interpolated per event with HistFactory code 4 (polynomial inside |ν| < 1,
  exponential outside): systematics approach (b), the baseline of published analyses.

Providers return all ensemble members, shape (K, B, n); the region uses their mean, and the
member spread through :mod:`eftflow.inference.model.ensemble_stat`.

Per-toy events
--------------
Pseudo-data need not live on the pool: :class:`UnbinnedData` may carry one event set per toy,
``x`` of shape (T, n_max, d) padded with zero-weight events (``weights`` (T, n_max)). Then toy t
is evaluated with parameter row t only (``bind_rows`` of the providers), and the pool serves only
the normalisation ⟨r̂_c⟩. This is how toys drawn independently from an exact generator (e.g.
:meth:`~eftflow.inference.model.toy.SystToy.toy_generator`) are fitted in one batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from eftflow.errors import InputError

from .histfactory import code4_coefficients, interp_code1, interp_code4
from .params import ModelParameter

__all__ = [
    "ExactLogRatio",
    "EnsembleLogRatio",
    "UpDownLogRatio",
    "Process",
    "UnbinnedData",
    "UnbinnedRegion",
]

log = logging.getLogger(__name__)


# -- providers --------------------------------------------------------------------------------
class ExactLogRatio:
    """A closed-form log r in torch: ``fn(x (n, d), pars (B, k)) -> (B, n)``.

    ``rowwise(x (T, n, d), pars (T, k)) -> (T, n)`` (optional) evaluates toy t's events at
    parameter row t; it makes per-toy events fast (without it, toys are evaluated one by one).
    """

    n_members = 1

    def __init__(self, fn: Callable, parameters: Sequence[str], *, rowwise: Callable | None = None):
        self.fn, self.parameters, self.rowwise = fn, tuple(parameters), rowwise

    def bind(self, x: np.ndarray, *, dtype, device):
        import torch

        xt = torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
        return lambda pars: self.fn(xt, pars)[None]

    def bind_rows(self, x: np.ndarray, *, dtype, device):
        """Per-toy events ``x`` (T, n, d): ``call(pars (T, k)) -> (1, T, n)``."""
        import torch

        xt = torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
        t, n = xt.shape[:2]
        if self.rowwise is not None:
            return lambda pars: self.rowwise(xt, pars.expand(t, -1))[None]
        return lambda pars: torch.stack([self.fn(xt[i], pars[i : i + 1])[0] for i in range(t)])[
            None
        ]


class EnsembleLogRatio:
    """Members ``log r̂(x|θ0)`` of a ratio ensemble whose θ0 input is ``parameters``.

    Parameters
    ----------
    members
        :class:`~eftflow.ml.models.RatioEstimator` modules (single-parameterised: the training
        reference is the denominator).
    parameters
        Model parameter names fed, in order, as the estimator's θ0 columns; an empty list for
        x-only networks (up/down ratios, trained with a dummy constant θ column).
    chunk
        Maximum ``B × n`` rows per forward pass.
    """

    def __init__(
        self,
        members: Sequence,
        parameters: Sequence[str],
        *,
        chunk: int = 2_000_000,
        source: str | None = None,
    ):
        if not members:
            raise InputError("an ensemble needs at least one member", file=source)
        self.members = list(members)
        self.parameters = tuple(parameters)
        self.chunk = int(chunk)
        self.source = source
        scale = getattr(self.members[0], "x_scale", None)
        self.n_observables = None if scale is None else int(scale.mean.shape[0])
        n_in = int(self.members[0].theta_scale.mean.shape[0])
        self.n_dummy = 0
        if len(self.parameters) == 0:
            self.n_dummy = n_in
        elif n_in != len(self.parameters):
            raise InputError(
                f"the estimator takes {n_in} parameter inputs, but the model feeds it "
                f"{len(self.parameters)} ({', '.join(self.parameters)}): it was trained without "
                "(or with other) nuisance parameters than the model declares",
                file=source,
                field="parameters",
            )
        self.n_members = len(self.members)

    @classmethod
    def load(cls, directory, parameters: Sequence[str], **kw) -> EnsembleLogRatio:
        """Load an ensemble directory written by :func:`eftflow.ml.ensemble.train_ensemble`."""
        from eftflow.ml.ensemble import Ensemble

        ens = Ensemble.load(directory)
        return cls(ens.members, parameters, source=str(directory), **kw)

    def _forward(self, xs, pars):
        import torch

        b, n = pars.shape[0], xs.shape[0]
        outs = []
        step = max(1, self.chunk // max(n, 1))
        for m in self.members:
            parts = []
            for i in range(0, b, step):
                p = pars[i : i + step].to(torch.float32)
                bb = p.shape[0]
                xx = xs[None].expand(bb, n, xs.shape[1]).reshape(bb * n, -1)
                pp = p[:, None, :].expand(bb, n, p.shape[1]).reshape(bb * n, -1)
                parts.append(m(xx, pp).reshape(bb, n))
            outs.append(torch.cat(parts, 0))
        return torch.stack(outs).to(pars.dtype)

    def bind(self, x: np.ndarray, *, dtype, device):
        import torch

        self._check_width(np.shape(x)[-1] if np.ndim(x) > 1 else 1)
        xs = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(len(x), -1), device=device)
        for m in self.members:
            m.to(device).eval()
        if self.n_dummy:
            fixed = self._forward_x_only(xs).to(dtype)[:, None, :]  # (K, 1, n)
            return lambda pars: fixed.expand(-1, pars.shape[0], -1)
        return lambda pars: self._forward(xs, pars)

    def _forward_x_only(self, xs):
        """(K, N) outputs of an x-only ensemble on the rows ``xs``: each member gets, as its θ
        input, the mean of the θ it was trained on — the constant a training set with a fixed
        θ column holds (zero once standardised), whatever constant that was."""
        import torch

        outs = []
        with torch.no_grad():
            for m in self.members:
                scale = getattr(m, "theta_scale", None)
                mean = getattr(scale, "mean", None)
                if mean is None:
                    mean = torch.zeros(self.n_dummy)
                mean = mean.to(device=xs.device, dtype=torch.float32)
                parts = []
                for i in range(0, xs.shape[0], self.chunk):
                    xx = xs[i : i + self.chunk]
                    parts.append(m(xx, mean[None].expand(xx.shape[0], -1)))
                outs.append(torch.cat(parts).reshape(-1))
        return torch.stack(outs)

    def _check_width(self, d: int) -> None:
        """The events must have the observables the estimator was trained on."""
        if self.n_observables is not None and d != self.n_observables:
            raise InputError(
                f"the estimator takes {self.n_observables} observables, the events have {d}: "
                "it was trained on another store's observables",
                file=self.source,
                field="observables",
            )

    def bind_rows(self, x: np.ndarray, *, dtype, device):
        """Per-toy events ``x`` (T, n, d): ``call(pars (T, k)) -> (K, T, n)``."""
        import torch

        x = np.asarray(x, dtype=np.float32)
        t, n = x.shape[:2]
        self._check_width(x.shape[2] if x.ndim > 2 else 1)
        xs = torch.as_tensor(x.reshape(t * n, -1), device=device)
        for m in self.members:
            m.to(device).eval()

        def forward(pars):
            pp = pars.to(torch.float32)[:, None, :].expand(t, n, pars.shape[1])
            pp = pp.reshape(t * n, -1)
            outs = []
            for m in self.members:
                parts = [
                    m(xs[i : i + self.chunk], pp[i : i + self.chunk])
                    for i in range(0, t * n, self.chunk)
                ]
                outs.append(torch.cat(parts).reshape(t, n))
            return torch.stack(outs).to(dtype)

        if self.n_dummy:
            fixed = self._forward_x_only(xs).reshape(-1, t, n).to(dtype)
            return lambda pars: fixed
        return forward


class UpDownLogRatio:
    """Nominal log r(x|θ) plus per-nuisance up/down factors interpolated per event (code 4).

    log r(x|θ,ν) = log r_nom(x|θ) + Σ_j log I₄(ν_j; g⁺_j(x), g⁻_j(x)), with g± = p(x|ν_j = ±1)
    / p(x|ν_j = 0) from x-only providers (the mean of their members). I₄ is HistFactory's
    code 4 (:func:`~eftflow.inference.model.histfactory.interp_code4`) applied to each event's
    pair of factors; a polynomial value ≤ 0 (possible for extreme g±) is clipped at 1e-12.
    """

    def __init__(self, nominal, variations: Mapping[str, tuple], *, code: str = "code4"):
        if code not in ("code4", "code1"):
            raise InputError(f"unknown interpolation {code!r}; use code4 or code1", field="code")
        self.nominal, self.code = nominal, code
        self.nu_names = tuple(variations)
        self.variations = dict(variations)
        clash = set(self.nu_names) & set(nominal.parameters)
        if clash:
            raise InputError(
                f"{sorted(clash)} are both inputs of the nominal estimator and up/down variations",
                field="variations",
            )
        self.parameters = tuple(nominal.parameters) + self.nu_names
        self.n_members = nominal.n_members

    def bind(self, x: np.ndarray, *, dtype, device):
        return self._bind(x, dtype, device, rows=False)

    def bind_rows(self, x: np.ndarray, *, dtype, device):
        """Per-toy events ``x`` (T, n, d): ``call(pars (T, k)) -> (K, T, n)``."""
        return self._bind(x, dtype, device, rows=True)

    def _bind(self, x, dtype, device, *, rows):
        import torch

        how = "bind_rows" if rows else "bind"
        nom = getattr(self.nominal, how)(x, dtype=dtype, device=device)
        k = len(self.nominal.parameters)
        shape = tuple(np.shape(x)[:2]) if rows else (1, len(x))
        his, los = [], []
        dummy = torch.zeros((shape[0], 0), dtype=dtype, device=device)
        for name in self.nu_names:
            up, dn = self.variations[name]
            with torch.no_grad():
                his.append(
                    torch.exp(getattr(up, how)(x, dtype=dtype, device=device)(dummy).mean(0))
                )
                los.append(
                    torch.exp(getattr(dn, how)(x, dtype=dtype, device=device)(dummy).mean(0))
                )
        hi = torch.stack(his) if his else torch.zeros((0,) + shape, dtype=dtype, device=device)
        lo = torch.stack(los) if los else torch.zeros_like(hi)
        coef = torch.as_tensor(
            code4_coefficients(hi.cpu().numpy(), lo.cpu().numpy()), dtype=dtype, device=device
        )  # (6, J, rows, n)

        def call(pars):
            out = nom(pars[:, :k])
            for j in range(len(self.nu_names)):
                alpha = pars[:, k + j : k + j + 1]
                if self.code == "code4":
                    f = interp_code4(alpha, hi[j], lo[j], coef[:, j])
                else:
                    f = interp_code1(alpha, hi[j], lo[j])
                out = out + torch.log(torch.clamp(f, min=1e-12))[None]
            return out

        return call


# -- processes and the region -------------------------------------------------------------------
@dataclass
class Process:
    """One process of an unbinned region.

    Parameters
    ----------
    name
        Process name.
    log_ratio
        A provider (:class:`ExactLogRatio`, :class:`EnsembleLogRatio`, :class:`UpDownLogRatio`).
    rate
        Expected events: a number, or a torch callable ``rate(pars (B, k)) -> (B,)`` of
        ``rate_parameters``.
    rate_parameters
        Names fed to ``rate``.
    normfactors
        Free normalisations multiplying the rate.
    normsys
        ``{nuisance: (hi, lo)}`` relative rate changes at ±1 (Gaussian-constrained nuisances),
        interpolated with ``normsys_code`` (``code1`` or ``code4``).
    """

    name: str
    log_ratio: object
    rate: float | Callable = 1.0
    rate_parameters: Sequence[str] = ()
    normfactors: Sequence[str] = ()
    normsys: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    normsys_code: str = "code4"


@dataclass
class UnbinnedData:
    """Event weights of one unbinned region: ``weights`` (T, n) on the pool or on ``x``.

    ``x`` is ``None`` (the pool), one event set (n, d) shared by all toys, or one padded event
    set per toy (T, n, d) (zero weights for the padding; see the module docstring).
    """

    weights: object
    x: np.ndarray | None = None
    _bound: dict = field(default_factory=dict, repr=False)


class UnbinnedRegion:
    """An unbinned region (see the module docstring for the likelihood).

    Parameters
    ----------
    name
        Region name.
    pool
        Reference events (n, d) drawn from p_ref: Asimov data and toys live on them.
    processes
        :class:`Process` list.
    pool_weights
        Weights of the pool events (default equal).
    normalise
        Pool normalisation of each r_c (default ``True``).
    spread
        ``None`` or an :class:`~eftflow.inference.model.ensemble_stat.SpreadTerm`.
    """

    kind = "unbinned"

    def __init__(
        self,
        name: str,
        pool,
        processes: Sequence[Process],
        *,
        pool_weights=None,
        normalise: bool = True,
        spread=None,
    ):
        self.name = name
        pool = np.asarray(pool, dtype=float)
        if pool.ndim == 1:
            pool = pool[:, None]
        if pool.ndim != 2 or len(pool) == 0:
            raise InputError("the pool must be a non-empty (n, d) array", field=f"{name}.pool")
        if not np.all(np.isfinite(pool)):
            row = int(np.argmax(~np.isfinite(pool).all(1)))
            raise InputError(f"pool event {row} is not finite", field=f"{name}.pool")
        self.pool = pool
        a = np.ones(len(pool)) if pool_weights is None else np.asarray(pool_weights, float)
        if a.shape != (len(pool),) or np.any(a < 0) or not a.sum() > 0:
            raise InputError(
                f"pool_weights must be {len(pool)} non-negative numbers", field=f"{name}.pool"
            )
        self.pool_weights = a / a.sum()
        if not processes:
            raise InputError("an unbinned region needs at least one process", field=name)
        self.processes = list(processes)
        for j, p in enumerate(self.processes):
            if not callable(p.rate) and not (np.isfinite(float(p.rate)) and float(p.rate) > 0):
                raise InputError(
                    f"process {p.name!r}: the rate must be a positive number, got {p.rate!r}",
                    field=f"{name}.processes[{j}].rate",
                )
            for n, hl in p.normsys.items():
                if not all(np.isfinite(float(v)) and float(v) > 0 for v in hl):
                    raise InputError(
                        f"process {p.name!r}: normsys {n!r} needs positive [hi, lo], got {hl!r}",
                        field=f"{name}.processes[{j}].normsys.{n}",
                    )
        self.normalise = bool(normalise)
        self.spread = spread
        names: list[str] = []
        for p in self.processes:
            for n in (*p.log_ratio.parameters, *p.rate_parameters, *p.normfactors, *p.normsys):
                if n not in names:
                    names.append(n)
        if spread is not None:
            names.append(spread.name)
        self.parameter_names = names
        self._cache: dict = {}

    def declared_parameters(self) -> list[ModelParameter]:
        """Parameters this region defines itself (normsys nuisances, normfactors, spread)."""
        out = []
        for p in self.processes:
            for n in p.normsys:
                out.append(
                    ModelParameter(
                        n, 0.0, -5.0, 5.0, kind="nuisance", constraint="normal", aux=0.0, sigma=1.0
                    )
                )
            for n in p.normfactors:
                out.append(ModelParameter(n, 1.0, 0.0, 10.0, kind="normfactor"))
        if self.spread is not None:
            out.append(self.spread.parameter())
        return out

    # -- evaluation ---------------------------------------------------------------------------
    def _local(self, names):
        return [self.parameter_names.index(n) for n in names]

    def _bound(self, x, key, dtype, device):
        ck = (key, str(dtype), str(device))
        if ck not in self._cache:
            rows = np.ndim(x) == 3
            for p in self.processes:
                if rows and not hasattr(p.log_ratio, "bind_rows"):
                    raise InputError(
                        f"process {p.name!r}: its log-ratio provider cannot evaluate per-toy "
                        "events (no bind_rows)",
                        field=f"{self.name}.processes",
                    )
            how = "bind_rows" if rows else "bind"
            if len(self._cache) > 8:  # per-toy event sets are large: keep few bindings
                self._cache = {k: v for k, v in self._cache.items() if k[0] == "pool"}
            self._cache[ck] = [
                getattr(p.log_ratio, how)(x, dtype=dtype, device=device) for p in self.processes
            ]
        return self._cache[ck]

    def _log_rates(self, pars):
        import torch

        out = []
        for p in self.processes:
            if callable(p.rate):
                r = p.rate(pars[:, self._local(p.rate_parameters)])
            else:
                r = torch.full(
                    (pars.shape[0],), float(p.rate), dtype=pars.dtype, device=pars.device
                )
            lr = torch.log(torch.clamp(r, min=1e-300))
            for n in p.normfactors:
                lr = lr + torch.log(torch.clamp(pars[:, self._local([n])[0]], min=1e-300))
            for n, (hi, lo) in p.normsys.items():
                alpha = pars[:, self._local([n])[0]]
                f = (
                    interp_code4(alpha, hi, lo)
                    if p.normsys_code == "code4"
                    else interp_code1(alpha, hi, lo)
                )
                lr = lr + torch.log(torch.clamp(f, min=1e-300))
            out.append(lr)
        return torch.stack(out, 1)  # (B, C)

    def _log_ratios(self, pars, bound):
        """Per-process per-event log r (B, C, n), spread applied."""
        import torch

        out = []
        for p, b in zip(self.processes, bound):
            members = b(pars[:, self._local(p.log_ratio.parameters)])  # (K, B, n)
            lr = members[0] if members.shape[0] == 1 else members.mean(0)
            if self.spread is not None:
                lr = self.spread.apply(lr, members, pars[:, self._local([self.spread.name])[0]])
            out.append(lr)
        return torch.stack(out, 1)

    def _log_norm(self, pars, lr_pool):
        import torch

        if not self.normalise:
            return torch.zeros(lr_pool.shape[:2], dtype=pars.dtype, device=pars.device)
        a = torch.as_tensor(self.pool_weights, dtype=pars.dtype, device=pars.device)
        m = lr_pool.detach().amax(-1, keepdim=True)
        return torch.log(torch.exp(lr_pool - m) @ a) + m[..., 0]  # (B, C)

    def log_expected_density(self, pars, x=None):
        """log(Σ_c ν_c r̂_c(x_i)) (B, n) and log ν_c (B, C) on the pool or on events ``x``."""
        import torch

        dt, dev = pars.dtype, pars.device
        lr_pool = self._log_ratios(pars, self._bound(self.pool, "pool", dt, dev))
        norm = self._log_norm(pars, lr_pool)
        if x is not None and np.ndim(x) == 3 and pars.shape[0] == 1 and x.shape[0] > 1:
            pars = pars.expand(x.shape[0], -1)  # one point, per-toy events
            lr_pool, norm = lr_pool.expand(x.shape[0], -1, -1), norm.expand(x.shape[0], -1)
        lr = lr_pool if x is None else self._log_ratios(pars, self._bound(x, id(x), dt, dev))
        log_rates = self._log_rates(pars)
        if lr.shape[1] == 1:
            return lr[:, 0] + (log_rates - norm), log_rates
        terms = lr + (log_rates - norm)[:, :, None]
        return torch.logsumexp(terms, dim=1), log_rates

    def nll_main(self, pars, data: UnbinnedData):
        """−ln L of the region (up to parameter-independent terms), shape (max(B, T),)."""
        import torch

        if data.x is not None:
            data._bound.setdefault("x", data.x)
        log_dens, log_rates = self.log_expected_density(pars, data.x)
        w = data.weights
        return torch.exp(log_rates).sum(1) - (w * log_dens).sum(-1)

    def expected_weights(self, pars):
        """Expected counts on the pool events (B, n): Asimov data."""
        import torch

        with torch.no_grad():
            return self.expected_weights_grad(pars)

    def expected_weights_grad(self, pars):
        """:meth:`expected_weights` with the autograd graph (differentiable in ``pars``)."""
        import torch

        log_dens, _ = self.log_expected_density(pars)
        la = torch.log(torch.as_tensor(self.pool_weights, dtype=pars.dtype, device=pars.device))
        return torch.exp(log_dens + la)

    def check_data(self, data) -> None:
        if not isinstance(data, UnbinnedData):
            raise InputError(f"region {self.name!r} needs UnbinnedData", field=self.name)
        n = (
            len(self.pool)
            if data.x is None
            else np.shape(data.x)[-2 if np.ndim(data.x) == 3 else 0]
        )
        if np.ndim(data.x) == 3 and data.x.shape[0] != data.weights.shape[0]:
            raise InputError(
                f"region {self.name!r}: {data.x.shape[0]} per-toy event sets for "
                f"{data.weights.shape[0]} toys",
                field=self.name,
            )
        if data.weights.shape[-1] != n:
            raise InputError(
                f"region {self.name!r}: weights for {data.weights.shape[-1]} events, "
                f"the events number {n}",
                field=self.name,
            )
