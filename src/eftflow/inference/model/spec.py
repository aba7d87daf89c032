"""Build a :class:`~eftflow.inference.model.model.StatModel` from a YAML/JSON description.

::

    poi: mu                          # parameter(s) of interest
    device: auto                     # auto | cpu | cuda
    parameters:                      # parameters the unbinned estimators take
      - {name: theta_1, init: 0.0, lower: -0.5, upper: 0.5}
      - {name: nu_shape, init: 0.0, lower: -5, upper: 5, constraint: normal}
    binned:
      - {name: cr, workspace: cr.json, normsys_code: code1, histosys_code: code0}
    unbinned:
      - name: sr
        pool: pool.npy               # reference events (.npy, (n, d)), or an event store:
        # store: events.zarr         #   observables of a zarr event store (store.events)
        observed: data.npy           # optional observed events (.npy)
        normalise: true
        spread: {name: gamma_sr, scale: 1.0}       # optional ensemble-spread parameter
        processes:
          - name: sig
            ensemble: ens/           # ratio ensemble parameterised in `parameters`
            parameters: [theta_1, nu_shape]
            rate: 1000.0             # expected events at the nominal point
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

Paths are relative to the spec file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError

from .params import ModelParameter

__all__ = ["load_spec", "build_model", "INFERENCE_DEFAULTS"]

INFERENCE_DEFAULTS = {
    "profiles": [],
    "contours": [],
    "impacts": True,
    "cls": False,
    "closure_eps": 0.01,
    "nvalues": 11,
    "contour_points": 20,
}
_TOP = {"poi", "device", "parameters", "binned", "unbinned", "data", "asimov", "inference"}


def load_spec(path) -> dict:
    import yaml

    path = Path(path)
    if not path.exists():
        raise InputError("model spec does not exist", file=str(path))
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"malformed YAML ({err})", file=str(path)) from None
    if not isinstance(spec, dict):
        raise ConfigError("a model spec must be a mapping", file=str(path))
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
        return np.load(p, allow_pickle=False)
    from eftflow.store.events import EventStore

    return EventStore(p).read("observables")


def build_model(spec: dict):
    """(model, observed events per unbinned region) from a loaded spec."""
    from .histfactory import from_pyhf
    from .model import BinnedRegion, StatModel
    from .unbinned import EnsembleLogRatio, Process, UnbinnedRegion, UpDownLogRatio

    base, file = Path(spec.get("_base", ".")), spec.get("_file")
    pars = []
    for k, p in enumerate(spec.get("parameters", []) or []):
        try:
            pars.append(
                ModelParameter(
                    str(p["name"]),
                    float(p.get("init", 0.0)),
                    float(p.get("lower", -np.inf)),
                    float(p.get("upper", np.inf)),
                    kind=p.get("kind", "nuisance" if p.get("constraint") else "free"),
                    constraint=p.get("constraint"),
                    aux=float(p.get("aux", 0.0)),
                    sigma=float(p.get("sigma", 1.0)),
                    fixed=bool(p.get("fixed", False)),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"bad parameter ({err})", file=file, field=f"parameters[{k}]"
            ) from None
    regions, observed = [], {}
    for k, b in enumerate(spec.get("binned", []) or []):
        if "workspace" not in b or "name" not in b:
            raise ConfigError(
                "a binned region needs name and workspace", file=file, field=f"binned[{k}]"
            )
        hf = from_pyhf(
            str(base / b["workspace"]),
            normsys_code=b.get("normsys_code", "code1"),
            histosys_code=b.get("histosys_code", "code0"),
        )
        regions.append(BinnedRegion(b["name"], hf))
    for k, u in enumerate(spec.get("unbinned", []) or []):
        where = f"unbinned[{k}]"
        if "name" not in u or not u.get("processes"):
            raise ConfigError("an unbinned region needs name and processes", file=file, field=where)
        if "pool" in u:
            pool = _events(base, u["pool"], file, f"{where}.pool")
        elif "store" in u:
            pool = _events(base, u["store"], file, f"{where}.store")
        else:
            raise ConfigError("an unbinned region needs a pool or store", file=file, field=where)
        procs = []
        for j, pr in enumerate(u["processes"]):
            pw = f"{where}.processes[{j}]"
            if "ensemble" not in pr:
                raise ConfigError("a process needs an ensemble directory", file=file, field=pw)
            prov = EnsembleLogRatio.load(base / pr["ensemble"], pr.get("parameters", []))
            if pr.get("updown"):
                var = {
                    n: (
                        EnsembleLogRatio.load(base / d["up"], []),
                        EnsembleLogRatio.load(base / d["down"], []),
                    )
                    for n, d in pr["updown"].items()
                }
                prov = UpDownLogRatio(prov, var)
            normsys = {n: (float(v[0]), float(v[1])) for n, v in (pr.get("normsys") or {}).items()}
            procs.append(
                Process(
                    pr.get("name", f"p{j}"),
                    prov,
                    rate=float(pr.get("rate", 1.0)),
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
        regions.append(
            UnbinnedRegion(
                u["name"], pool, procs, normalise=u.get("normalise", True), spread=spread
            )
        )
        if u.get("observed"):
            observed[u["name"]] = _events(base, u["observed"], file, f"{where}.observed")
    if not regions:
        raise ConfigError("the model has no regions", file=file, field="binned")
    model = StatModel(regions, pars, poi=spec.get("poi"), device=spec.get("device", "auto"))
    return model, observed
