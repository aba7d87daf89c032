"""Binned regions with HistFactory modifiers, vectorised in numpy and torch; pyhf JSON I/O.

The expected count in bin b of sample s (pyhf's definition):

    lambda_sb = (nominal_sb + sum_histosys Delta_sb(alpha)) * prod_normsys f(alpha)
                * prod_normfactor mu * lumi * prod_{shapesys, staterror, shapefactor} gamma_b

Modifiers and interpolation codes:

=============  ==========================================================================
normsys        code 1: ``f = hi^a`` (a >= 0), ``lo^-a`` (a < 0);
               code 4 (pyhf's default): polynomial of order 6 for ``|a| < 1`` (matching value,
               first and second derivatives of the exponential at ``|a| = 1``),
               exponential beyond.
histosys       code 0: piecewise linear ``a (up - nom)`` / ``a (nom - down)``;
               code 4p (pyhf's default): polynomial ``a (S + a A (15 + a^2 (3 a^2 - 10)))`` inside,
               ``S = (up - down) / 2``, ``A = (up + down - 2 nom) / 16``, linear beyond.
normfactor     free normalisation (no constraint)
lumi           Gaussian-constrained normalisation (aux and sigma from the measurement)
shapesys       per bin gamma, Poisson constraint with ``tau = (nominal / uncertainty)^2``
               (Barlow-Beeston lite, one gamma per bin of the sample)
staterror      per bin gamma shared by the samples of a channel, Gaussian constraint with
               ``sigma_b = sqrt(sum_s unc_sb^2) / sum_s nom_sb``
shapefactor    free per-bin factors
=============  ==========================================================================

The main log-likelihood is ``sum_b n_b log lambda_b - lambda_b - lgamma(n_b + 1)`` and
:meth:`HistFactoryModel.logpdf` adds the constraint terms, so the value equals pyhf's
``model.logpdf`` (checked to 1e-8 in the tests).

Example
-------
>>> ws = {"channels": [{"name": "sr", "samples": [
...     {"name": "sig", "data": [5.0, 10.0],
...      "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
...     {"name": "bkg", "data": [50.0, 60.0],
...      "modifiers": [{"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]}],
...   "observations": [{"name": "sr", "data": [55.0, 70.0]}],
...   "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}
>>> hf = from_pyhf(ws)
>>> hf.parameter_names
['mu', 'bkg_norm']
>>> hf.expected(np.array([[1.0, 0.0]])).tolist()
[[55.0, 70.0]]
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from eftflow.errors import InputError

from .interp import (
    _is_torch,
    _Ops,
    code4_coefficients,
    interp_code0,
    interp_code1,
    interp_code4,
    interp_code4p,
)
from .params import ConstraintSet, ModelParameter

__all__ = [
    "MODIFIER_TYPES",
    "HistFactoryModel",
    "from_pyhf",
    "interp_code1",
    "interp_code4",
    "interp_code0",
    "interp_code4p",
    "code4_coefficients",
]

log = logging.getLogger(__name__)

MODIFIER_TYPES = (
    "normsys",
    "histosys",
    "normfactor",
    "lumi",
    "shapesys",
    "staterror",
    "shapefactor",
)
_NORMSYS_CODES = ("code1", "code4")
_HISTOSYS_CODES = ("code0", "code4p")

# -- the model ------------------------------------------------------------------------------
_DEFAULT_BOUNDS = {
    "normsys": (-5.0, 5.0),
    "histosys": (-5.0, 5.0),
    "normfactor": (0.0, 10.0),
    "lumi": (0.0, 10.0),
    "shapesys": (1e-10, 10.0),
    "staterror": (1e-10, 10.0),
    "shapefactor": (0.0, 10.0),
}


class HistFactoryModel:
    """Binned channels with HistFactory modifiers (build with :func:`from_pyhf`).

    Attributes
    ----------
    parameters
        :class:`ModelParameter` list (scalar; vector modifiers as ``name[i]``).
    channels
        ``[(name, n_bins)]``; bins of all channels are concatenated in this order.
    observed
        Observed counts (n_bins_total,).
    poi
        Name of the parameter of interest of the measurement (or ``None``).
    """

    def __init__(
        self,
        spec: dict,
        *,
        measurement: str | None = None,
        normsys_code="code4",
        histosys_code="code4p",
        source: str | None = None,
    ):
        if normsys_code not in _NORMSYS_CODES:
            raise InputError(
                f"unknown normsys interpolation {normsys_code!r}; use {_NORMSYS_CODES}",
                file=source,
                field="normsys_code",
            )
        if histosys_code not in _HISTOSYS_CODES:
            raise InputError(
                f"unknown histosys interpolation {histosys_code!r}; use {_HISTOSYS_CODES}",
                file=source,
                field="histosys_code",
            )
        self.source = source
        self.normsys_code, self.histosys_code = normsys_code, histosys_code
        self.spec = copy.deepcopy(spec)
        self._parse(self.spec, measurement)

    # -- parsing ---------------------------------------------------------------------------
    def _err(self, msg: str, field: str) -> InputError:
        return InputError(msg, file=self.source, field=field)

    def _parse(self, spec: dict, measurement: str | None) -> None:
        if not isinstance(spec, Mapping) or "channels" not in spec:
            raise self._err("not a pyhf workspace (no 'channels')", "channels")
        self.channels: list[tuple[str, int]] = []
        rows: list[tuple[str, str]] = []
        nominal_rows = []
        offsets = {}
        total = 0
        for ci, ch in enumerate(spec["channels"]):
            name = ch.get("name")
            samples = ch.get("samples") or []
            if not samples:
                raise self._err("channel has no samples", f"channels[{ci}]")
            nb = len(samples[0].get("data", []))
            if nb == 0:
                raise self._err(f"channel {name!r} has no bins", f"channels[{ci}].samples[0].data")
            offsets[name] = total
            self.channels.append((name, nb))
            total += nb
        self.n_bins = total
        params: dict[str, dict] = {}
        mods = {t: [] for t in (*MODIFIER_TYPES, "perbin")}
        for ci, ch in enumerate(spec["channels"]):
            cname, nb = self.channels[ci]
            off = offsets[cname]
            sl = slice(off, off + nb)
            stat_groups: dict[str, list] = {}
            for si, smp in enumerate(ch["samples"]):
                where = f"channels[{ci}].samples[{si}]"
                data = np.asarray(smp.get("data", []), dtype=float)
                if data.shape == (nb,) and not np.all(np.isfinite(data)):
                    raise self._err(
                        f"sample {smp.get('name')!r} has a non-finite yield", f"{where}.data"
                    )
                if data.shape != (nb,):
                    raise self._err(
                        f"sample {smp.get('name')!r} has {data.size} bins, channel "
                        f"{cname!r} has {nb}",
                        f"{where}.data",
                    )
                row = np.zeros(total)
                row[sl] = data
                s = len(rows)
                rows.append((cname, smp.get("name")))
                nominal_rows.append(row)
                for mi, mod in enumerate(smp.get("modifiers", [])):
                    mw = f"{where}.modifiers[{mi}]"
                    mtype, mname = mod.get("type"), mod.get("name")
                    if mtype not in MODIFIER_TYPES:
                        raise self._err(
                            f"unknown modifier type {mtype!r} (modifier {mname!r}); known: "
                            + ", ".join(MODIFIER_TYPES),
                            f"{mw}.type",
                        )
                    if not isinstance(mname, str) or not mname:
                        raise self._err("modifier without a name", f"{mw}.name")
                    md = mod.get("data")
                    if mtype == "normsys":
                        try:
                            hi, lo = float(md["hi"]), float(md["lo"])
                        except (TypeError, KeyError, ValueError):
                            raise self._err("normsys needs data {hi, lo}", f"{mw}.data") from None
                        if not (hi > 0 and lo > 0):
                            raise self._err("normsys hi and lo must be positive", f"{mw}.data")
                        mods["normsys"].append((s, mname, hi, lo))
                        self._declare(params, mname, "normsys", 1, mw)
                    elif mtype == "histosys":
                        try:
                            hd = np.asarray(md["hi_data"], float)
                            ld = np.asarray(md["lo_data"], float)
                        except (TypeError, KeyError, ValueError):
                            raise self._err(
                                "histosys needs data {hi_data, lo_data}", f"{mw}.data"
                            ) from None
                        if hd.shape != (nb,) or ld.shape != (nb,):
                            raise self._err(
                                f"histosys data must have {nb} bins, got {hd.size}/{ld.size}",
                                f"{mw}.data",
                            )
                        up = np.zeros(total)
                        dn = np.zeros(total)
                        up[sl] = hd - data
                        dn[sl] = data - ld
                        mods["histosys"].append((s, mname, up, dn))
                        self._declare(params, mname, "histosys", 1, mw)
                    elif mtype in ("normfactor", "lumi"):
                        mods[mtype].append((s, mname))
                        self._declare(params, mname, mtype, 1, mw)
                    else:  # per-bin gammas
                        if mtype != "shapefactor":
                            unc = np.asarray(md, float) if md is not None else None
                            if unc is None or unc.shape != (nb,):
                                raise self._err(f"{mtype} data must have {nb} bins", f"{mw}.data")
                        if mtype == "staterror":
                            stat_groups.setdefault(mname, []).append((s, data, unc, mw))
                            continue
                        self._declare(params, mname, mtype, nb, mw)
                        extra = {}
                        if mtype == "shapesys":
                            valid = (data > 0) & (unc > 0)
                            extra = {
                                "tau": np.where(valid, data**2 / np.where(valid, unc, 1) ** 2, 1.0),
                                "fixed": ~valid,
                            }
                        if "extra" in params[mname]:
                            raise self._err(
                                f"{mtype} {mname!r} is used by two samples; give each its own name",
                                f"{mw}.name",
                            )
                        params[mname]["extra"] = extra
                        mods["perbin"].append((s, mname, sl))
            for mname, group in stat_groups.items():
                self._declare(params, mname, "staterror", nb, group[0][3])
                noms = sum(g[1] for g in group)
                rel2 = sum(
                    np.where(noms > 0, (g[2] / np.where(noms > 0, noms, 1)) ** 2, 0.0)
                    for g in group
                )
                sig = np.sqrt(rel2)
                params[mname]["extra"] = {"sigma": np.where(sig > 0, sig, 1.0), "fixed": sig == 0}
                for s, *_ in group:
                    mods["perbin"].append((s, mname, sl))
        self.samples = rows
        self.nominal = np.array(nominal_rows)
        self._build_parameters(spec, params, measurement)
        self._build_indices(mods)
        obs = {o.get("name"): o.get("data") for o in spec.get("observations", [])}
        obs_index = {o.get("name"): k for k, o in enumerate(spec.get("observations", []))}
        self.observed = np.zeros(total)
        for cname, nb in self.channels:
            if cname not in obs:
                raise self._err(f"no observation for channel {cname!r}", "observations")
            d = np.asarray(obs[cname], float)
            if d.shape != (nb,):
                raise self._err(
                    f"observation of channel {cname!r} has {d.size} bins, expected {nb}",
                    "observations",
                )
            bad = ~np.isfinite(d) | (d < 0)
            if bad.any():
                b = int(np.argmax(bad))
                raise self._err(
                    f"observation of channel {cname!r} has count {d[b]} in bin {b}; counts must "
                    "be finite and non-negative",
                    f"observations[{obs_index[cname]}].data[{b}]",
                )
            self.observed[offsets[cname] : offsets[cname] + nb] = d

    @staticmethod
    def _declare(params, name, mtype, n, where):
        if name in params:
            if params[name]["type"] != mtype or params[name]["n"] != n:
                raise InputError(
                    f"modifier {name!r} is used as {params[name]['type']} and as {mtype}",
                    field=where,
                )
            return
        params[name] = {"type": mtype, "n": n}

    def _build_parameters(self, spec, params, measurement_name) -> None:
        meas = spec.get("measurements") or []
        config: dict = {}
        if meas:
            chosen = (
                meas[0]
                if measurement_name is None
                else next((m for m in meas if m.get("name") == measurement_name), None)
            )
            if chosen is None:
                raise self._err(
                    f"no measurement {measurement_name!r}; known: "
                    + ", ".join(m.get("name", "?") for m in meas),
                    "measurements",
                )
            config = chosen.get("config", {})
        self.measurement = config
        self.poi = config.get("poi")
        overrides = {p["name"]: p for p in config.get("parameters", []) if "name" in p}
        for name in overrides:
            if name not in params:
                raise self._err(
                    f"the measurement configures {name!r}, which no modifier uses",
                    "measurements.config.parameters",
                )
        if self.poi is not None and self.poi not in params:
            raise self._err(
                f"the parameter of interest {self.poi!r} is not a modifier of the workspace",
                "measurements.config.poi",
            )
        out: list[ModelParameter] = []
        self.slices: dict[str, slice] = {}
        for name, info in params.items():
            mtype, n = info["type"], info["n"]
            extra = info.get("extra", {})
            ov = overrides.get(name, {})
            lo, hi = _DEFAULT_BOUNDS[mtype]
            bounds = ov.get("bounds", [[lo, hi]] * n)
            inits = ov.get("inits", [0.0 if mtype in ("normsys", "histosys") else 1.0] * n)
            fixed_cfg = bool(ov.get("fixed", False))
            kind = {
                "normsys": "nuisance",
                "histosys": "nuisance",
                "lumi": "nuisance",
                "normfactor": "normfactor",
                "shapefactor": "free",
            }.get(mtype, "gamma")
            if name == self.poi:
                kind = "poi"
            start = len(out)
            for i in range(n):
                pname = (
                    name
                    if n == 1 and mtype not in ("shapesys", "staterror", "shapefactor")
                    else f"{name}[{i}]"
                )
                kw = {}
                if mtype in ("normsys", "histosys"):
                    kw = {"constraint": "normal", "aux": 0.0, "sigma": 1.0}
                elif mtype == "lumi":
                    aux = ov.get("auxdata", [1.0])[0]
                    sig = ov.get("sigmas", [None])[0]
                    if sig is None:
                        raise self._err(
                            f"lumi parameter {name!r} needs 'sigmas' in the measurement",
                            "measurements.config.parameters",
                        )
                    kw = {"constraint": "normal", "aux": float(aux), "sigma": float(sig)}
                elif mtype == "staterror":
                    kw = {"constraint": "normal", "aux": 1.0, "sigma": float(extra["sigma"][i])}
                elif mtype == "shapesys":
                    tau = float(extra["tau"][i])
                    kw = {"constraint": "poisson", "aux": tau, "tau": tau}
                fixed = fixed_cfg or bool(extra.get("fixed", np.zeros(n, bool))[i])
                out.append(
                    ModelParameter(
                        pname,
                        float(inits[i]),
                        float(bounds[i][0]),
                        float(bounds[i][1]),
                        kind=kind,
                        fixed=fixed,
                        **kw,
                    )
                )
            self.slices[name] = slice(start, len(out))
        self.parameters = out
        self.modifier_types = {name: info["type"] for name, info in params.items()}
        self.constraints = ConstraintSet(out)

    def _build_indices(self, mods) -> None:
        first = {name: sl.start for name, sl in self.slices.items()}
        ns = mods["normsys"]
        self._ns_s = np.array([m[0] for m in ns], np.int64)
        self._ns_p = np.array([first[m[1]] for m in ns], np.int64)
        self._ns_hi = np.array([m[2] for m in ns])
        self._ns_lo = np.array([m[3] for m in ns])
        self._ns_c4 = code4_coefficients(self._ns_hi, self._ns_lo) if ns else np.zeros((6, 0))
        hs = mods["histosys"]
        self._hs_s = np.array([m[0] for m in hs], np.int64)
        self._hs_p = np.array([first[m[1]] for m in hs], np.int64)
        self._hs_up = np.array([m[2] for m in hs]).reshape(len(hs), self.n_bins)
        self._hs_dn = np.array([m[3] for m in hs]).reshape(len(hs), self.n_bins)
        sc = mods["normfactor"] + mods["lumi"]
        self._sc_s = np.array([m[0] for m in sc], np.int64)
        self._sc_p = np.array([first[m[1]] for m in sc], np.int64)
        pb = mods.get("perbin", [])
        self._pb_s = np.array([m[0] for m in pb], np.int64)
        pmap = np.full((len(pb), self.n_bins), -1, np.int64)
        for k, (_, name, sl) in enumerate(pb):
            pmap[k, sl] = np.arange(self.slices[name].start, self.slices[name].stop)
        self._pb_map = pmap

    # -- evaluation ------------------------------------------------------------------------
    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def init(self) -> np.ndarray:
        return np.array([p.init for p in self.parameters])

    def _check(self, pars):
        if pars.ndim != 2 or pars.shape[1] != len(self.parameters):
            raise InputError(
                f"expected parameters of shape (batch, {len(self.parameters)}), got "
                f"{tuple(pars.shape)}",
                field="parameters",
            )

    def expected_per_sample(self, pars):
        """Expected counts per sample, shape (B, n_samples, n_bins); numpy or torch ``pars``."""
        self._check(pars)
        ops = _Ops(pars)
        b = pars.shape[0]
        nom = (
            ops.arr(self.nominal)[None].expand(b, -1, -1)
            if ops.torch
            else np.broadcast_to(self.nominal, (b,) + self.nominal.shape)
        )
        if len(self._hs_s):
            alpha = pars[:, ops.idx(self._hs_p)][:, :, None]
            up, dn = ops.arr(self._hs_up)[None], ops.arr(self._hs_dn)[None]
            f = interp_code0 if self.histosys_code == "code0" else interp_code4p
            nom = ops.add_into(nom * 1.0, self._hs_s, f(alpha, up, dn))
        fac = ops.ones((b, len(self.samples)))
        if len(self._ns_s):
            alpha = pars[:, ops.idx(self._ns_p)]
            if self.normsys_code == "code1":
                v = interp_code1(alpha, self._ns_hi[None], self._ns_lo[None])
            else:
                v = interp_code4(
                    alpha, self._ns_hi[None], self._ns_lo[None], self._ns_c4[:, None, :]
                )
            fac = ops.prod_into(fac, self._ns_s, v)
        if len(self._sc_s):
            fac = ops.prod_into(fac, self._sc_s, pars[:, ops.idx(self._sc_p)])
        out = nom * fac[:, :, None]
        if len(self._pb_s):
            pm = self._pb_map
            g = pars[:, ops.idx(np.where(pm >= 0, pm, 0))]  # (B, Q, N)
            g = ops.where(ops.idx(pm)[None] >= 0, g, ops.ones(g.shape))
            binfac = ops.prod_into(ops.ones(tuple(out.shape)), self._pb_s, g)
            out = out * binfac
        return out

    def expected(self, pars):
        """Expected counts per bin (B, n_bins)."""
        return self.expected_per_sample(pars).sum(1)

    def logpdf_main(self, pars, counts):
        """Poisson log-likelihood of ``counts`` (B or 1, n_bins), shape (B,)."""
        ops = _Ops(pars)
        lam = self.expected(pars)
        n = ops.arr(counts) if not _is_torch(counts) else counts
        terms = ops.xlogy(n, lam) - lam - ops.lgamma(n + 1.0)
        return terms.sum(-1)

    def logpdf(self, pars, counts=None, aux=None):
        """Main + constraint log-pdf (equals pyhf's ``model.logpdf``), shape (B,)."""
        import torch

        was_np = not _is_torch(pars)
        p = torch.as_tensor(np.asarray(pars), dtype=torch.float64) if was_np else pars
        if p.ndim == 1:
            p = p[None]
        counts = self.observed[None] if counts is None else counts
        aux = self.constraints.nominal_aux[None] if aux is None else aux
        c = torch.as_tensor(np.asarray(counts), dtype=p.dtype) if not _is_torch(counts) else counts
        a = torch.as_tensor(np.asarray(aux), dtype=p.dtype) if not _is_torch(aux) else aux
        out = self.logpdf_main(p, c.reshape(-1, self.n_bins)) + self.constraints.logpdf(
            p, a.reshape(-1, len(self.constraints))
        )
        return out.detach().numpy() if was_np else out

    # -- pyhf output -------------------------------------------------------------------------
    def to_pyhf(self, observed: Sequence[float] | None = None) -> dict:
        """The workspace as a pyhf JSON dict (optionally with other observed counts)."""
        ws = copy.deepcopy(self.spec)
        obs = self.observed if observed is None else np.asarray(observed, float)
        if obs.shape != (self.n_bins,):
            raise InputError(
                f"observed must have {self.n_bins} bins, got {obs.shape}", field="observed"
            )
        ws["observations"] = []
        off = 0
        for cname, nb in self.channels:
            ws["observations"].append({"name": cname, "data": obs[off : off + nb].tolist()})
            off += nb
        ws.setdefault("version", "1.0.0")
        if not ws.get("measurements"):
            ws["measurements"] = [
                {"name": "measurement", "config": {"poi": self.poi, "parameters": []}}
            ]
        return ws

    def pyhf_model(self):
        """The equivalent ``pyhf.Model`` (for cross-checks), with the same interpolation codes."""
        import warnings

        import pyhf

        with warnings.catch_warnings():  # pyhf's schema validation uses a deprecated resolver
            warnings.filterwarnings("ignore", "jsonschema.RefResolver", DeprecationWarning)
            ws = pyhf.Workspace(self.to_pyhf())
            return ws.model(
                modifier_settings={
                    "normsys": {"interpcode": self.normsys_code},
                    "histosys": {"interpcode": self.histosys_code},
                }
            )

    def pars_for_pyhf(self, pars: np.ndarray, model) -> np.ndarray:
        """Reorder our parameter vector (P,) into pyhf's ``model`` order."""
        out = np.asarray(model.config.suggested_init(), dtype=float)
        for name, sl in self.slices.items():
            out[model.config.par_slice(name)] = np.asarray(pars)[sl]
        return out

    def bins_for_pyhf(self, counts: np.ndarray, model) -> np.ndarray:
        """Reorder per-bin values (..., n_bins) into pyhf's channel order (sorted names)."""
        counts = np.asarray(counts, dtype=float)
        offsets, off = {}, 0
        for cname, nb in self.channels:
            offsets[cname] = (off, nb)
            off += nb
        parts = []
        for cname in model.config.channels:
            o, nb = offsets[cname]
            parts.append(counts[..., o : o + nb])
        return np.concatenate(parts, axis=-1)


def from_pyhf(
    workspace,
    *,
    measurement: str | None = None,
    normsys_code: str = "code4",
    histosys_code: str = "code4p",
) -> HistFactoryModel:
    """Build a :class:`HistFactoryModel` from a pyhf workspace (dict, JSON text or file path).

    The interpolation codes default to pyhf's own (``code4`` for normsys, ``code4p`` for
    histosys), so the likelihood is pyhf's; ``code1``/``code0`` are ROOT HistFactory's older
    defaults.
    """
    import json
    from pathlib import Path

    source = None
    if isinstance(workspace, str | Path) and not str(workspace).lstrip().startswith("{"):
        source = str(workspace)
        try:
            workspace = json.loads(Path(workspace).read_text())
        except FileNotFoundError:
            raise InputError("workspace file does not exist", file=source) from None
        except json.JSONDecodeError as err:
            raise InputError(
                f"malformed JSON ({err.msg})", file=source, field=f"line {err.lineno}"
            ) from None
    elif isinstance(workspace, str):
        workspace = json.loads(workspace)
    return HistFactoryModel(
        workspace,
        measurement=measurement,
        normsys_code=normsys_code,
        histosys_code=histosys_code,
        source=source,
    )
