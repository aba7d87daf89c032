"""Build a :class:`~eftflow.inference.model.model.StatModel` from a YAML/JSON description.

::

    poi: mu                          # parameter(s) of interest
    device: auto                     # auto | cpu | cuda
    parameters:                      # parameters the unbinned estimators take
      - {name: theta_1, init: 0.0, lower: -0.5, upper: 0.5}
      - {name: nu_shape, init: 0.0, lower: -5, upper: 5, constraint: normal}
    binned:
      - {name: cr, workspace: cr.json, normsys_code: code4, histosys_code: code4p}  # pyhf defaults
    unbinned:
      - name: sr
        pool: pool.npy               # reference events (.npy, (n, d)), or an event store:
        # store: events.zarr         #   observables of a combined event store, with
        # partition: test            #   its partition (default all),
        # observables: [m_ll, pt_ll] #   the columns the estimators take (default all),
        # max_events: 5000           #   at most this many events (default all) and
        # pool_weights: {setup: setup.h5, theta: sm}   # weights at θ_ref (default equal)
        observed: data.npy           # optional observed events (.npy)
        normalise: true
        spread: {name: gamma_sr, scale: 1.0}       # optional ensemble-spread parameter
        processes:
          - name: sig
            ensemble: ens/           # ratio ensemble parameterised in `parameters`
            parameters: [theta_1, nu_shape]
            rate: 1000.0             # expected events at the nominal point, or L·σ(θ) from
            # rate: {setup: setup.h5, store: events.zarr, luminosity: 1.0e5}  # the morphing
            normfactors: [mu]
            normsys: {nu_norm: [1.1, 0.909]}       # [hi, lo]
            updown:                  # optional: up/down networks (approach b), code 4
              nu_x: {up: up_ens/, down: down_ens/}
    data: asimov                     # asimov | observed
    asimov: {mu: 1.0}                # the injected point of the Asimov data
    inference:
      profiles: [mu]
      contours: [[mu, nu_shape]]
      impacts: true
      cls: false
      closure_eps: 0.01              # Asimov closure gate (in units of each parameter's error)
      nvalues: 11                    # points per profile scan
      contour_points: 20             # points per MINOS contour
      toys: {n_toys: 200, seed: 1, truth: {mu: 1.0}}    # optional: pulls + coverage with toys
      neyman: {poi: mu, grid: {min: 0.5, max: 1.5, n: 11}, n_toys: 100, cl: 0.68, seed: 2}

Paths are relative to the spec file. A ``rate`` mapping makes the yield θ-dependent:
ν(θ) = L·σ(θ) with σ(θ) = Σ_b w_b(θ) σ_b, the setup's morphing weights times the store's
per-benchmark cross sections (:class:`~eftflow.inference.model.store_source.MorphingRate`; the
setup's parameters must be model parameters); ``pool_weights`` weights the pool events of a
store at a reference point (:func:`~eftflow.inference.model.store_source.pool_from_store`).

A *built model* (``eftflow build-model``, :func:`write_model_dir`) is a directory with
``model.json`` (the resolved spec with absolute paths, the SHA-256 of every referenced
ensemble / event file, the parameter table, the Asimov closure result) and ``binned/<region>.json``
(the pyhf workspace of each binned region, which the built model reads instead of the original).
:func:`load_model_dir` checks the hashes again, so a built model never silently fits other
inputs than it was built (and closure-tested) with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError

from .built import (
    MODEL_FORMAT,
    hash_path,
    load_model_dir,
    parameter_table,
    resolve_spec,
    write_model_dir,
)
from .options import INFERENCE_DEFAULTS, inference_options
from .params import ModelParameter

__all__ = [
    "load_spec",
    "build_model",
    "inference_options",
    "resolve_spec",
    "hash_path",
    "parameter_table",
    "write_model_dir",
    "load_model_dir",
    "INFERENCE_DEFAULTS",
    "MODEL_FORMAT",
]

_TOP = {"poi", "device", "parameters", "binned", "unbinned", "data", "asimov", "inference"}
_PARAMETER_KEYS = {"name", "init", "lower", "upper", "kind", "constraint", "aux", "sigma", "tau"}
_PARAMETER_KEYS |= {"fixed"}
_BINNED_KEYS = {"name", "workspace", "normsys_code", "histosys_code", "source_workspace"}
_UNBINNED_KEYS = {"name", "pool", "store", "partition", "observables", "max_events"}
_UNBINNED_KEYS |= {"pool_weights", "observed", "normalise", "spread", "processes"}
_PROCESS_KEYS = {"name", "ensemble", "parameters", "rate", "normfactors", "normsys", "updown"}
_SPREAD_KEYS = {"name", "scale"}
_DATA_KINDS = ("asimov", "observed")


def _entry(item, known: set, file, field: str, what: str) -> dict:
    """``item`` as a mapping with only ``known`` keys (a typo is an error naming the field)."""
    if not isinstance(item, dict):
        raise ConfigError(f"{what} must be a mapping", file=file, field=field)
    unknown = sorted(set(item) - known, key=str)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}",
            file=file,
            field=f"{field}.{unknown[0]}",
        )
    return item


def _list(spec: dict, key: str, file) -> list:
    value = spec.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list", file=file, field=key)
    return value


def _region_name(entry: dict, file, field: str) -> str:
    """A region name usable as a file name (``binned/<name>.json``) and a result key."""
    name = entry["name"]
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
    ):
        raise ConfigError(
            f"region name {name!r} must be a non-empty string without '/' or '\\'",
            file=file,
            field=f"{field}.name",
        )
    return name


def load_spec(path) -> dict:
    from eftflow.config import read_document

    path = Path(path)
    if not path.exists():
        raise InputError("model spec does not exist", file=str(path))
    spec = read_document(path, what="a YAML model spec")
    if not isinstance(spec, dict):
        raise ConfigError("a model spec must be a mapping", file=str(path))
    from eftflow.config import refuse_workflow_config

    refuse_workflow_config(spec, file=path, what="a model spec", doc="docs/statistical-model.md")
    unknown = sorted(set(spec) - _TOP)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; known: {', '.join(sorted(_TOP))}",
            file=str(path),
            field=unknown[0],
        )
    spec["_base"] = str(path.parent)
    spec["_file"] = str(path)
    return spec


def _events(base: Path, entry, file, field):
    p = base / entry
    if not p.exists():
        raise InputError("file does not exist", file=str(p), field=field)
    if p.suffix == ".npy":
        try:
            x = np.load(p, allow_pickle=False)
        except ValueError as err:
            raise InputError(
                f"not a numeric .npy array ({err})", file=str(p), field=field
            ) from None
    else:
        from eftflow.store.events import EventStore

        x = EventStore(p).read("observables")
    x = np.asarray(x)
    if x.dtype.kind not in "iuf" or not np.all(np.isfinite(x)):
        bad = "not numeric" if x.dtype.kind not in "iuf" else "has non-finite values"
        raise InputError(f"the event array {bad}", file=str(p), field=field)
    return x


def build_model(spec: dict):
    """(model, observed events per unbinned region) from a loaded spec."""
    from .histfactory import from_pyhf
    from .model import BinnedRegion, StatModel
    from .store_source import spec_pool, spec_rate
    from .unbinned import EnsembleLogRatio, Process, UnbinnedRegion, UpDownLogRatio

    base, file = Path(spec.get("_base", ".")), spec.get("_file")
    data_kind = spec.get("data", "asimov")
    if data_kind not in _DATA_KINDS:
        raise ConfigError(
            f"unknown data {data_kind!r}; use {' or '.join(_DATA_KINDS)}", file=file, field="data"
        )
    device = spec.get("device", "auto")
    if not isinstance(device, str) or not (
        device in ("auto", "cpu") or device.split(":")[0] == "cuda"
    ):
        raise ConfigError(
            f"unknown device {device!r}; use auto, cpu or cuda", file=file, field="device"
        )
    pars, spec_index = [], {}
    for k, p in enumerate(_list(spec, "parameters", file)):
        where = f"parameters[{k}]"
        _entry(p, _PARAMETER_KEYS, file, where, "a parameter")
        if "name" not in p:
            raise ConfigError("a parameter needs a name", file=file, field=where)
        name = str(p["name"])
        if name in spec_index:
            raise ConfigError(
                f"parameter {name!r} is declared twice (also parameters[{spec_index[name]}])",
                file=file,
                field=f"{where}.name",
            )
        spec_index[name] = k
        try:
            lower, upper = float(p.get("lower", -np.inf)), float(p.get("upper", np.inf))
            if not lower < upper:
                raise ConfigError(
                    f"lower bound {lower:g} is not below the upper bound {upper:g} (to hold a "
                    "parameter constant use fixed: true)",
                    file=file,
                    field=where,
                )
            pars.append(
                ModelParameter(
                    name,
                    float(p.get("init", 0.0)),
                    lower,
                    upper,
                    kind=p.get("kind", "nuisance" if p.get("constraint") else "free"),
                    constraint=p.get("constraint"),
                    aux=float(p.get("aux", 0.0)),
                    sigma=float(p.get("sigma", 1.0)),
                    tau=float(p.get("tau", 1.0)),
                    fixed=bool(p.get("fixed", False)),
                )
            )
        except InputError as err:
            raise InputError(err.message, file=file, field=where) from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"bad parameter ({err})", file=file, field=where) from None
    regions, observed = [], {}
    for k, b in enumerate(_list(spec, "binned", file)):
        _entry(b, _BINNED_KEYS, file, f"binned[{k}]", "a binned region")
        if "workspace" not in b or "name" not in b:
            raise ConfigError(
                "a binned region needs name and workspace", file=file, field=f"binned[{k}]"
            )
        _region_name(b, file, f"binned[{k}]")
        _check_workspace(base / b["workspace"], file, f"binned[{k}].workspace")
        hf = from_pyhf(
            str(base / b["workspace"]),
            normsys_code=b.get("normsys_code", "code4"),
            histosys_code=b.get("histosys_code", "code4p"),
        )
        regions.append(BinnedRegion(b["name"], hf))
    for k, u in enumerate(_list(spec, "unbinned", file)):
        where = f"unbinned[{k}]"
        _entry(u, _UNBINNED_KEYS, file, where, "an unbinned region")
        if "name" not in u or not u.get("processes"):
            raise ConfigError("an unbinned region needs name and processes", file=file, field=where)
        _region_name(u, file, where)
        if not isinstance(u["processes"], list):
            raise ConfigError("processes must be a list", file=file, field=f"{where}.processes")
        if u.get("spread"):
            _entry(u["spread"], _SPREAD_KEYS, file, f"{where}.spread", "spread")
        pool_weights = None
        if "pool" in u:
            pool = _events(base, u["pool"], file, f"{where}.pool")
        elif "store" in u:
            pool, pool_weights = spec_pool(base, u, file, where)
        else:
            raise ConfigError("an unbinned region needs a pool or store", file=file, field=where)
        procs = []
        for j, pr in enumerate(u["processes"]):
            pw = f"{where}.processes[{j}]"
            _entry(pr, _PROCESS_KEYS, file, pw, "a process")
            if "ensemble" not in pr:
                raise ConfigError("a process needs an ensemble directory", file=file, field=pw)
            rate, rate_parameters = spec_rate(base, pr.get("rate", 1.0), file, f"{pw}.rate")
            prov = _ensemble(
                EnsembleLogRatio, base, pr["ensemble"], pr.get("parameters", []), file, pw
            )
            if pr.get("updown"):
                var = {
                    n: (
                        _ensemble(EnsembleLogRatio, base, d["up"], [], file, f"{pw}.updown.{n}.up"),
                        _ensemble(
                            EnsembleLogRatio, base, d["down"], [], file, f"{pw}.updown.{n}.down"
                        ),
                    )
                    for n, d in pr["updown"].items()
                }
                prov = UpDownLogRatio(prov, var)
            normsys = {n: (float(v[0]), float(v[1])) for n, v in (pr.get("normsys") or {}).items()}
            procs.append(
                Process(
                    pr.get("name", f"p{j}"),
                    prov,
                    rate=rate,
                    rate_parameters=rate_parameters,
                    normfactors=pr.get("normfactors", []),
                    normsys=normsys,
                )
            )
        spread = None
        if u.get("spread"):
            from .ensemble_stat import SpreadTerm

            spread = SpreadTerm(
                u["spread"].get("name", f"gamma_{u['name']}"),
                scale=float(u["spread"].get("scale", 1.0)),
            )
        try:
            region = UnbinnedRegion(
                u["name"],
                pool,
                procs,
                pool_weights=pool_weights,
                normalise=u.get("normalise", True),
                spread=spread,
            )
        except InputError as err:
            if err.file is not None:
                raise
            field = str(err.field or "")
            field = where + field[len(u["name"]) :] if field.startswith(u["name"]) else where
            raise InputError(err.message, file=file, field=field) from None
        regions.append(region)
        if u.get("observed"):
            x = _events(base, u["observed"], file, f"{where}.observed")
            x = x[:, None] if x.ndim == 1 else x
            if x.ndim != 2 or x.shape[1] != region.pool.shape[1]:
                raise InputError(
                    f"observed events of shape {x.shape}; the pool has "
                    f"{region.pool.shape[1]} observables per event",
                    file=str(base / str(u["observed"])),
                    field=f"{where}.observed",
                )
            observed[u["name"]] = x
        elif data_kind == "observed":
            raise ConfigError(
                "data: observed needs the region's observed events (observed: events.npy)",
                file=file,
                field=f"{where}.observed",
            )
    if not regions:
        raise ConfigError("the model has no regions", file=file, field="binned")
    used = {n for r in regions for n in r.parameter_names}
    for k, p in enumerate(pars):
        if p.name not in used:
            raise InputError(
                f"parameter {p.name!r} is declared but no region uses it (no estimator takes it "
                "as an input and no modifier names it): was the estimator trained without it?",
                file=file,
                field=f"parameters[{k}]",
            )
    declared = {q.name: q for r in regions for q in r.declared_parameters()}
    entries = _list(spec, "parameters", file)
    for k, p in enumerate(pars):
        q = declared.get(p.name)
        if q is not None and "constraint" not in entries[k]:
            # bounds, start value or fixed for a region's parameter: its constraint stays
            p.constraint, p.aux, p.sigma, p.tau = q.constraint, q.aux, q.sigma, q.tau
            if "kind" not in entries[k]:
                p.kind = q.kind
    try:
        model = StatModel(regions, pars, poi=spec.get("poi"), device=device)
    except InputError as err:
        if err.file is not None:
            raise
        field = err.field
        name = (field or "").split(".", 1)[1] if (field or "").startswith("parameters.") else None
        if name in spec_index:
            field = f"parameters[{spec_index[name]}]"
        raise InputError(err.message, file=file, field=field) from None
    _check_expected(model, spec, file)
    for name, k in spec_index.items():
        i = model.index(name)
        lo, hi, init = model.lower[i], model.upper[i], model.init[i]
        if not lo < hi or not lo <= init <= hi:
            raise InputError(
                f"the bounds of {name!r} and those its region declares leave [{lo:g}, {hi:g}]"
                + (f", which does not hold the initial value {init:g}" if lo < hi else ""),
                file=file,
                field=f"parameters[{k}]",
            )
    return model, observed


def _check_expected(model, spec: dict, file) -> None:
    """Every binned region's expected counts at the initial point must be finite and
    non-negative (pyhf allows a negative sample yield, not a negative total)."""
    import torch

    binned = {b["name"]: (k, b) for k, b in enumerate(_list(spec, "binned", file))}
    with torch.no_grad():
        expected = model._expected(model.tensor(model.init[None]))
    for region in model.regions:
        if region.kind != "binned":
            continue
        lam = expected[region.name][0].cpu().numpy()
        bad = ~np.isfinite(lam) | (lam < 0)
        if bad.any():
            b = int(np.argmax(bad))
            channel = next(
                (c, b - off)
                for off, (c, nb) in zip(
                    np.cumsum([0] + [nb for _, nb in region.hf.channels]), region.hf.channels
                )
                if off <= b < off + nb
            )
            k, entry = binned[region.name]
            raise InputError(
                f"the expected count of channel {channel[0]!r} bin {channel[1]} is {lam[b]:g} "
                "at the initial parameters (the sum of its samples must be non-negative)",
                file=str(Path(spec.get("_base", ".")) / str(entry["workspace"])),
                field=f"binned[{k}].workspace",
            )


def _check_workspace(path: Path, file, where: str) -> None:
    """What the HistFactory reader leaves to pyhf's schema: every sample and channel a workspace
    refers to must exist once (observations of an unknown channel, a sample name used twice in a
    channel are errors naming the workspace file and the field)."""
    import json

    if not path.is_file():
        raise InputError(f"workspace {str(path)!r} does not exist", file=file, field=where)
    try:
        ws = json.loads(path.read_text())
    except ValueError as err:
        raise InputError(f"malformed JSON ({err})", file=str(path)) from None
    if not isinstance(ws, dict):
        raise InputError("not a pyhf workspace (not a mapping)", file=str(path))
    channels = []
    for ci, ch in enumerate(ws.get("channels") or []):
        channels.append(ch.get("name"))
        seen = set()
        for si, smp in enumerate(ch.get("samples") or []):
            name = smp.get("name")
            if name in seen:
                raise InputError(
                    f"sample {name!r} appears twice in channel {ch.get('name')!r}",
                    file=str(path),
                    field=f"channels[{ci}].samples[{si}].name",
                )
            seen.add(name)
    for oi, obs in enumerate(ws.get("observations") or []):
        if obs.get("name") not in channels:
            raise InputError(
                f"observation of unknown channel {obs.get('name')!r}; channels: "
                + ", ".join(map(str, channels)),
                file=str(path),
                field=f"observations[{oi}].name",
            )


def _ensemble(cls, base: Path, entry, parameters, file, where):
    """Load an ensemble; errors name the spec file and the process's field."""
    path = base / str(entry)
    if not path.exists():
        raise InputError(f"ensemble directory {str(path)!r} does not exist", file=file, field=where)
    try:
        return cls.load(path, list(parameters))
    except InputError as err:
        field = f"{where}.parameters" if err.field == "parameters" else where
        raise InputError(f"ensemble {str(path)!r}: {err.message}", file=file, field=field) from None
