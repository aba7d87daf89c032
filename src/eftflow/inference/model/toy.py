r"""The analytic toy (:mod:`eftflow.generate.toy`) with two known systematics.

Parameters θ = (θ₁, θ₂) as in the toy generator, and two nuisance parameters:

* ``nu_shape`` (shape): the Gaussian core moves by a = κ ν,
  dσ(x|θ,ν) = σ₀ φ(x − a)(1 + θ₁x + θ₂(x² − 1))²  =  dσ(x|θ,0) · exp(a x − a²/2).
  The per-event factor g(x|ν) = exp(κνx − κ²ν²/2) is independent of θ (so the up/down
  baseline is exact at ν = ±1, 0 and only interpolates in between), while the rate
  σ(θ,ν) = σ₀ (c² + (θ₁ + 2aθ₂)² + 2θ₂²), c = 1 + θ₁a + θ₂a², does depend on θ·ν.
* ``nu_norm`` (normalisation only): the rate is multiplied by exp(δ ν_norm) (a log-normal
  normsys with hi = e^δ, lo = e^−δ).

Reference p_ref = p(x|θ=0, ν=0) = φ(x). The exact log-ratio is
log r(x|θ,ν) = a x − a²/2 + 2 log|1 + θ·f(x)| − log(σ(θ,ν_shape)/σ₀).

Events at any (θ, ν) are drawn exactly: x = y + a with y from the toy at
θ' = ((θ₁ + 2aθ₂)/c, θ₂/c) (the polynomial re-expanded around the shifted core).
"""

from __future__ import annotations

import math

import numpy as np

from eftflow.errors import InputError

__all__ = ["SystToy", "CR_WORKSPACE", "build_toy_model", "exact_provider"]


class SystToy:
    """The toy with a shape and a normalisation nuisance parameter (see the module docstring).

    Parameters
    ----------
    sigma0
        Nominal cross section (pb).
    luminosity
        Integrated luminosity (pb⁻¹): expected events ν_tot = L σ(θ, ν).
    kappa
        Shift of the core per unit ``nu_shape``.
    delta
        Log of the normalisation change per unit ``nu_norm``.
    """

    theta_names = ("theta_1", "theta_2")
    nu_names = ("nu_shape", "nu_norm")

    def __init__(
        self,
        *,
        sigma0: float = 1.0,
        luminosity: float = 1000.0,
        kappa: float = 0.2,
        delta: float = 0.1,
    ):
        if not (sigma0 > 0 and luminosity > 0):
            raise InputError("sigma0 and luminosity must be positive", field="toy")
        self.sigma0, self.luminosity = float(sigma0), float(luminosity)
        self.kappa, self.delta = float(kappa), float(delta)

    # -- closed forms (numpy or torch: the arithmetic is shared) --------------------------------
    def cross_section(self, theta, nu):
        """σ(θ, ν) for arrays (..., 2) of θ and ν."""
        t1, t2 = theta[..., 0], theta[..., 1]
        a = self.kappa * nu[..., 0]
        c = 1.0 + t1 * a + t2 * a * a
        lin = t1 + 2.0 * a * t2
        exp = np.exp if isinstance(theta, np.ndarray) else _torch_exp
        return self.sigma0 * (c * c + lin * lin + 2.0 * t2 * t2) * exp(self.delta * nu[..., 1])

    def rate(self, theta, nu):
        """Expected number of events L σ(θ, ν)."""
        return self.luminosity * self.cross_section(theta, nu)

    def log_ratio(self, x, theta, nu):
        """Exact log p(x|θ,ν)/p_ref(x); ``x`` (n,), θ and ν (B, 2) → (B, n) (numpy or torch)."""
        is_np = isinstance(theta, np.ndarray)
        log, absf = (np.log, np.abs) if is_np else (_torch_log, _torch_abs)
        t1, t2 = theta[:, 0:1], theta[:, 1:2]
        a = self.kappa * nu[:, 0:1]
        sig = (self.cross_section(theta, nu * _mask_norm(nu)) / self.sigma0)[:, None]
        if is_np or bool((theta[:, 1] != 0).any()) or theta.requires_grad:
            amp = 1.0 + t1 * x[None] + t2 * (x[None] ** 2 - 1.0)
        else:  # θ₂ = 0: one product fewer per event
            amp = 1.0 + t1 * x[None]
        return a * x[None] + 2.0 * log(absf(amp)) - (log(sig) + 0.5 * a * a)

    def score(self, x, theta, nu):
        """∇ log p(x|θ,ν) with respect to (θ₁, θ₂, ν_shape, ν_norm), numerical-free (autograd)."""
        import torch

        t = torch.tensor(np.column_stack([theta, nu]), dtype=torch.float64, requires_grad=True)
        xt = torch.as_tensor(np.asarray(x, float))
        lr = self.log_ratio_rowwise(xt, t[:, :2], t[:, 2:])
        (g,) = torch.autograd.grad(lr.sum(), t)
        return g.numpy()

    def log_ratio_rowwise(self, x, theta, nu):
        """log r for one parameter point per event: x (n,), θ, ν (n, 2) → (n,) (torch)."""
        import torch

        t1, t2 = theta[:, 0], theta[:, 1]
        a = self.kappa * nu[:, 0]
        amp = 1.0 + t1 * x + t2 * (x * x - 1.0)
        sig = self.cross_section(theta, nu * _mask_norm(nu)) / self.sigma0
        return a * x - 0.5 * a * a + 2.0 * torch.log(torch.abs(amp)) - torch.log(sig)

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, n: int, theta, nu, rng: np.random.Generator) -> np.ndarray:
        """``n`` exact draws of x at one (θ, ν)."""
        from eftflow.generate.toy import sample_toy

        t1, t2 = float(theta[0]), float(theta[1])
        a = self.kappa * float(nu[0])
        c = 1.0 + t1 * a + t2 * a * a
        if abs(c) < 1e-12:
            raise InputError("degenerate toy point (c = 0)", field="theta")
        y = sample_toy(int(n), np.array([(t1 + 2 * a * t2) / c, t2 / c]), rng)
        return y + a

    def sample_rows(self, theta, nu, rng: np.random.Generator) -> np.ndarray:
        """One exact draw per row of θ, ν (n, 2): vectorised rejection from N(0, 2)."""
        from eftflow.generate.toy import _envelope

        theta, nu = np.asarray(theta, float), np.asarray(nu, float)
        a = self.kappa * nu[:, 0]
        c = 1.0 + theta[:, 0] * a + theta[:, 1] * a * a
        tp = np.column_stack([(theta[:, 0] + 2 * a * theta[:, 1]) / c, theta[:, 1] / c])
        bound = np.array([_envelope(t) for t in tp])
        out = np.full(len(tp), np.nan)
        todo = np.arange(len(tp))
        while todo.size:
            y = rng.normal(0.0, np.sqrt(2.0), todo.size)
            u = rng.uniform(0.0, bound[todo])
            poly = 1.0 + tp[todo, 0] * y + tp[todo, 1] * (y * y - 1.0)
            ok = u < poly * poly * np.exp(-y * y / 4.0)
            out[todo[ok]] = y[ok] + a[todo[ok]]
            todo = todo[~ok]
        return out

    def sample_extended(self, theta, nu, rng: np.random.Generator) -> np.ndarray:
        """A Poisson number (mean ν_tot) of events at (θ, ν)."""
        lam = float(self.rate(np.asarray(theta, float), np.asarray(nu, float)))
        return self.sample(rng.poisson(lam), theta, nu, rng)

    def training_set(
        self,
        n: int,
        rng: np.random.Generator,
        *,
        theta_range=(-0.3, 0.3),
        nu_range=(-2.0, 2.0),
        theta_dims: int = 2,
    ) -> dict[str, np.ndarray]:
        """Columns (MadMiner names) for one network parameterised in θ and ν_shape.

        Half the rows are drawn at random (θ, ν) (label y = 0, numerator), half from the
        reference (y = 1) with the same (θ, ν) as conditioning; ``r_xz`` and ``t_xz0`` are the
        exact ratio and score (the toy's x is the whole event), so ``alice``, ``alices``,
        ``rascal``, ``rolr`` and ``carl`` can all train on it. ``theta0`` has columns
        (θ₁[, θ₂], ν_shape): normalisation nuisances do not change p(x) and are left out.
        """
        half = n // 2
        theta = np.zeros((2 * half, 2))
        theta[:, :theta_dims] = rng.uniform(*theta_range, size=(2 * half, theta_dims))
        nu = np.zeros((2 * half, 2))
        nu[:, 0] = rng.uniform(*nu_range, size=2 * half)
        x = np.empty(2 * half)
        x[:half] = self.sample_rows(theta[:half], nu[:half], rng)
        x[half:] = rng.normal(size=half)
        y = np.r_[np.zeros(half), np.ones(half)]
        import torch

        tt = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        nn_ = torch.tensor(nu, dtype=torch.float64, requires_grad=True)
        lr = self.log_ratio_rowwise(torch.as_tensor(x), tt, nn_)
        gt, gn = torch.autograd.grad(lr.sum(), (tt, nn_))
        cols = list(range(theta_dims))
        theta0 = np.column_stack([theta[:, cols], nu[:, 0]])
        t_xz0 = np.column_stack([gt.numpy()[:, cols], gn.numpy()[:, 0]])
        return {
            "x": x[:, None],
            "theta0": theta0,
            "y": y[:, None],
            "r_xz": np.exp(lr.detach().numpy())[:, None],
            "t_xz0": t_xz0,
        }

    def updown_training_set(self, n: int, sign: int, rng: np.random.Generator) -> dict:
        """Columns for one up (``sign=+1``) or down (``-1``) ratio network g(x|ν±) at θ = 0.

        y = 0 rows are drawn at ν_shape = ±1, y = 1 rows at the nominal; ``theta0`` is a dummy
        constant column (the network depends on x only).
        """
        half = n // 2
        x = np.r_[self.sample(half, [0.0, 0.0], [float(sign), 0.0], rng), rng.normal(size=half)]
        a = self.kappa * sign
        r = np.exp(a * x - 0.5 * a * a)
        return {
            "x": x[:, None],
            "theta0": np.zeros((2 * half, 1)),
            "y": np.r_[np.zeros(half), np.ones(half)][:, None],
            "r_xz": r[:, None],
            "t_xz0": np.zeros((2 * half, 1)),
        }

    # -- the toy as a statistical model ------------------------------------------------------
    def reference_pool(self, n: int) -> np.ndarray:
        """``n`` quantiles of p_ref = N(0, 1) at (i + ½)/n: a pool whose mean of any smooth
        r(x) is accurate to O(1/n²) instead of the O(1/√n) of random draws."""
        from scipy.special import ndtri

        return ndtri((np.arange(int(n)) + 0.5) / int(n))

    def _point(self, model, values):
        v = model.vector(values)
        get = {n: v[model.index(n)] for n in model.names}
        theta = np.array([get.get(n, 0.0) for n in self.theta_names])
        nu = np.array([get.get(n, 0.0) for n in self.nu_names])
        return v, theta, nu

    def toy_generator(self, model, region: str = "sr"):
        """Pseudo-data for ``model`` with the events of unbinned ``region`` drawn exactly.

        Returns ``gen(values, n_toys, rng) -> ModelData``: per toy a Poisson number (mean
        L σ(θ, ν) e^{δ ν_norm}) of independent exact draws at (θ, ν) (parameters read from the
        model by the names :attr:`theta_names`, :attr:`nu_names`; absent ones are 0), padded into
        per-toy event sets; binned regions get Poisson counts of their expectation and every
        constraint fresh auxiliary data (:meth:`StatModel.toys`).
        """
        from .unbinned import UnbinnedData

        if region not in [r.name for r in model.regions]:
            raise InputError(f"no region {region!r} in the model", field="region")

        def gen(values, n_toys: int, rng: np.random.Generator):
            v, theta, nu = self._point(model, values)
            data = model.toys(v, n_toys, rng)
            counts = rng.poisson(float(self.rate(theta, nu)), size=n_toys)
            x = np.zeros((n_toys, max(int(counts.max()), 1), 1))
            w = np.zeros(x.shape[:2])
            for t, k in enumerate(counts):
                x[t, :k, 0] = self.sample(k, theta, nu, rng)
                w[t, :k] = 1.0
            data.regions[region] = UnbinnedData(model.tensor(w), x)
            return data

        return gen


#: the binned control region of the toy model: a background whose normalisation shares
#: ``nu_norm`` with the signal region and has a free normalisation ``mu_bkg``
CR_WORKSPACE = {
    "channels": [
        {
            "name": "cr",
            "samples": [
                {
                    "name": "bkg",
                    "data": [200.0, 150.0],
                    "modifiers": [
                        {"name": "nu_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                        {"name": "mu_bkg", "type": "normfactor", "data": None},
                    ],
                }
            ],
        }
    ],
    "observations": [{"name": "cr", "data": [200.0, 150.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu_bkg", "parameters": []}}],
    "version": "1.0.0",
}


def _th_nu(p, nominal=False):
    import torch

    z = torch.zeros_like(p[:, 0])
    return torch.stack([p[:, 0], z], 1), torch.stack([z if nominal else p[:, 1], z], 1)


def exact_provider(toy: SystToy, *, nominal: bool = False):
    """The exact log r(x|θ₁, ν_shape) (``nominal=True``: log r(x|θ₁) at ν = 0) as an
    :class:`~eftflow.inference.model.unbinned.ExactLogRatio` with a fast per-toy form."""
    from .unbinned import ExactLogRatio

    def fn(x, p):
        return toy.log_ratio(x[:, 0], *_th_nu(p, nominal))

    def rows(x, p):  # x (T, n, 1), p (T, k): broadcast per toy
        th, nu = _th_nu(p, nominal)
        return toy.log_ratio(x[..., 0], th, nu)[0]

    names = ["theta_1"] if nominal else ["theta_1", "nu_shape"]
    return ExactLogRatio(fn, names, rowwise=rows)


def build_toy_model(
    toy: SystToy, *, provider=None, pool=None, n_pool: int = 1000, binned: bool = True, spread=None
):
    """The toy's statistical model: unbinned region ``sr`` (POI ``theta_1``, nuisances
    ``nu_shape`` and the normsys ``nu_norm``) on a quantile ``pool`` of p_ref, plus the binned
    control region ``cr`` (:data:`CR_WORKSPACE`). ``provider`` defaults to the exact log-ratio."""
    from .histfactory import from_pyhf
    from .model import BinnedRegion, StatModel
    from .params import ModelParameter
    from .unbinned import Process, UnbinnedRegion

    def rate(p):
        return toy.rate(*_th_nu(p))

    proc = Process(
        "sig",
        provider or exact_provider(toy),
        rate=rate,
        rate_parameters=["theta_1", "nu_shape"],
        normsys={"nu_norm": (math.exp(toy.delta), math.exp(-toy.delta))},
    )
    pool = toy.reference_pool(n_pool) if pool is None else pool
    regions = [UnbinnedRegion("sr", pool, [proc], spread=spread)]
    if binned:
        # code1/code0: the interpolation the published closure tables were made with
        cr = from_pyhf(CR_WORKSPACE, normsys_code="code1", histosys_code="code0")
        regions.append(BinnedRegion("cr", cr))
    pars = [
        ModelParameter("theta_1", 0.0, -0.5, 0.5, kind="poi"),
        ModelParameter("nu_shape", 0.0, -5.0, 5.0, kind="nuisance", constraint="normal"),
    ]
    return StatModel(regions, pars, poi="theta_1", device="cpu")


def _mask_norm(nu):
    """Zero the normalisation nuisance (it does not change the normalised density)."""
    out = nu * 0.0 + 1.0
    out[..., 1] = 0.0
    return out


def _torch_exp(v):
    import torch

    return torch.exp(v)


def _torch_log(v):
    import torch

    return torch.log(v)


def _torch_abs(v):
    import torch

    return torch.abs(v)
