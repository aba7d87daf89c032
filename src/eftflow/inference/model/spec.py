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

INFERENCE_DEFAULTS = {
    "profiles": [],
    "contours": [],
    "impacts": True,
    "cls": False,
    "closure_eps": 0.01,
    "nvalues": 11,
    "contour_points": 20,
    "toys": None,
    "neyman": None,
}
_TOYS_KEYS = {"n_toys", "seed", "truth", "batch"}
_NEYMAN_KEYS = {"poi", "grid", "n_toys", "cl", "seed", "batch"}
#: ``format`` of a built model's model.json
MODEL_FORMAT = "eftflow-model/1"
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
        return np.load(p, allow_pickle=False)
    from eftflow.store.events import EventStore

    return EventStore(p).read("observables")


def build_model(spec: dict):
    """(model, observed events per unbinned region) from a loaded spec."""
    from .histfactory import from_pyhf
    from .model import BinnedRegion, StatModel
    from .store_source import spec_pool, spec_rate
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
        _check_workspace(base / b["workspace"], file, f"binned[{k}].workspace")
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
        regions.append(
            UnbinnedRegion(
                u["name"],
                pool,
                procs,
                pool_weights=pool_weights,
                normalise=u.get("normalise", True),
                spread=spread,
            )
        )
        if u.get("observed"):
            observed[u["name"]] = _events(base, u["observed"], file, f"{where}.observed")
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
    try:
        model = StatModel(regions, pars, poi=spec.get("poi"), device=spec.get("device", "auto"))
    except InputError as err:
        if err.file is not None:
            raise
        raise InputError(err.message, file=file, field=err.field) from None
    return model, observed


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


def _in_bounds(model, values: dict, file, field: str) -> None:
    for name, v in values.items():
        if name not in model.names:
            raise InputError(
                f"unknown parameter {name!r}; known: {', '.join(model.names)}",
                file=file,
                field=f"{field}.{name}",
            )
        i = model.index(name)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{v!r} is not a number", file=file, field=f"{field}.{name}"
            ) from None
        if not model.lower[i] <= v <= model.upper[i]:
            raise InputError(
                f"{name} = {v:.6g} is outside its bounds [{model.lower[i]:.6g}, "
                f"{model.upper[i]:.6g}]",
                file=file,
                field=f"{field}.{name}",
            )


def inference_options(spec: dict, model) -> dict:
    """The ``inference`` section merged with :data:`INFERENCE_DEFAULTS` and checked against the
    model (parameter names, toys and Neyman grids inside the parameters' bounds), plus the
    ``asimov`` point; errors name the spec file and the field."""
    file = spec.get("_file")
    raw = spec.get("inference") or {}
    if not isinstance(raw, dict):
        raise ConfigError("inference must be a mapping", file=file, field="inference")
    unknown = sorted(set(raw) - set(INFERENCE_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r}; known: {', '.join(sorted(INFERENCE_DEFAULTS))}",
            file=file,
            field=f"inference.{unknown[0]}",
        )
    inf = {**INFERENCE_DEFAULTS, **raw}
    _in_bounds(model, spec.get("asimov") or {}, file, "asimov")
    for k, name in enumerate(inf["profiles"] or []):
        if name not in model.names:
            raise InputError(
                f"unknown parameter {name!r}", file=file, field=f"inference.profiles[{k}]"
            )
    for k, pair in enumerate(inf["contours"] or []):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ConfigError(
                "a contour is a pair [x, y]", file=file, field=f"inference.contours[{k}]"
            )
        for name in pair:
            if name not in model.names:
                raise InputError(
                    f"unknown parameter {name!r}", file=file, field=f"inference.contours[{k}]"
                )
    if inf["toys"] is not None:
        t = inf["toys"]
        if not isinstance(t, dict) or set(t) - _TOYS_KEYS:
            raise ConfigError(
                f"toys takes {', '.join(sorted(_TOYS_KEYS))}", file=file, field="inference.toys"
            )
        if not int(t.get("n_toys", 200)) >= 2:
            raise ConfigError("n_toys must be at least 2", file=file, field="inference.toys.n_toys")
        _in_bounds(model, t.get("truth") or spec.get("asimov") or {}, file, "inference.toys.truth")
    if inf["neyman"] is not None:
        ny = inf["neyman"]
        if not isinstance(ny, dict) or set(ny) - _NEYMAN_KEYS or "grid" not in ny:
            raise ConfigError(
                f"neyman takes grid and {', '.join(sorted(_NEYMAN_KEYS - {'grid'}))}",
                file=file,
                field="inference.neyman",
            )
        poi = ny.get("poi", model.poi[0])
        if poi not in model.names:
            raise InputError(f"unknown parameter {poi!r}", file=file, field="inference.neyman.poi")
        g = ny["grid"]
        try:
            if isinstance(g, dict):
                grid = np.linspace(float(g["min"]), float(g["max"]), int(g["n"]))
            else:
                grid = np.asarray(g, float).reshape(-1)
            if grid.size < 2 or not np.all(np.isfinite(grid)):
                raise ValueError
        except (TypeError, ValueError, KeyError):
            raise ConfigError(
                "grid is {min, max, n} or a list of at least two values",
                file=file,
                field="inference.neyman.grid",
            ) from None
        for v in (grid.min(), grid.max()):
            _in_bounds(model, {poi: v}, file, "inference.neyman.grid")
        if int(ny.get("n_toys", 100)) < 10:
            raise ConfigError(
                "the Neyman construction needs at least 10 toys per point",
                file=file,
                field="inference.neyman.n_toys",
            )
        inf["neyman"] = {**ny, "poi": poi, "grid": grid.tolist()}
    return inf


# -- built models -------------------------------------------------------------------------------
def hash_path(path) -> str:
    """SHA-256 of a file, or of a directory tree (relative paths and contents, sorted)."""
    import hashlib

    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file())
    for q in files:
        if q != path:
            h.update(str(q.relative_to(path)).encode() + b"\0")
        with q.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _path_fields(spec: dict):
    """(field, entry) of every file or directory the spec refers to."""
    for k, b in enumerate(spec.get("binned") or []):
        if "workspace" in b:
            yield f"binned[{k}].workspace", b, "workspace"
    for k, u in enumerate(spec.get("unbinned") or []):
        for key in ("pool", "store", "observed"):
            if u.get(key):
                yield f"unbinned[{k}].{key}", u, key
        if isinstance(u.get("pool_weights"), dict) and "setup" in u["pool_weights"]:
            yield f"unbinned[{k}].pool_weights.setup", u["pool_weights"], "setup"
        for j, pr in enumerate(u.get("processes") or []):
            if "ensemble" in pr:
                yield f"unbinned[{k}].processes[{j}].ensemble", pr, "ensemble"
            if isinstance(pr.get("rate"), dict):
                for key in ("setup", "store"):
                    if key in pr["rate"]:
                        yield f"unbinned[{k}].processes[{j}].rate.{key}", pr["rate"], key
            for n, d in (pr.get("updown") or {}).items():
                for side in ("up", "down"):
                    if side in d:
                        yield f"unbinned[{k}].processes[{j}].updown.{n}.{side}", d, side


def resolve_spec(spec: dict) -> tuple[dict, list[dict]]:
    """(a copy of ``spec`` with absolute paths and without the private keys, the inputs
    ``[{field, path, sha256}]``)."""
    import copy

    base = Path(spec.get("_base", ".")).resolve()
    out = copy.deepcopy({k: v for k, v in spec.items() if not k.startswith("_")})
    inputs = []
    for field, holder, key in _path_fields(out):
        p = (base / str(holder[key])).resolve()
        if not p.exists():
            raise InputError(f"{str(p)!r} does not exist", file=spec.get("_file"), field=field)
        holder[key] = str(p)
        inputs.append({"field": field, "path": str(p), "sha256": hash_path(p)})
    return out, inputs


def parameter_table(model) -> list[dict]:
    """Every model parameter as a dict (name, kind, init, bounds, constraint, aux, sigma, ...)."""
    rows = []
    for p in model.parameters:
        row = dict(p.__dict__)
        for k in ("lower", "upper"):
            row[k] = None if not np.isfinite(row[k]) else float(row[k])
        rows.append(row)
    return rows


def write_model_dir(directory, spec: dict, model, *, closure: dict | None = None) -> dict:
    """Write the built model (see the module docstring) into ``directory`` (which must exist;
    the caller writes it atomically); returns the ``model.json`` content."""
    import json

    from eftflow import __version__

    directory = Path(directory)
    resolved, inputs = resolve_spec(spec)
    (directory / "binned").mkdir()
    for k, b in enumerate(resolved.get("binned") or []):
        region = next(r for r in model.regions if r.name == b["name"])
        ws = region.hf.to_pyhf()
        (directory / "binned" / f"{b['name']}.json").write_text(json.dumps(ws, indent=1))
        b["source_workspace"] = b["workspace"]
        b["workspace"] = f"binned/{b['name']}.json"  # relative to the model directory
        inputs[k]["copied_to"] = b["workspace"]
    desc = {
        "format": MODEL_FORMAT,
        "eftflow_version": __version__,
        "spec_file": str(Path(spec.get("_file", "")).resolve()) if spec.get("_file") else None,
        "spec": resolved,
        "inputs": inputs,
        "poi": list(model.poi),
        "parameters": parameter_table(model),
        "regions": [{"name": r.name, "kind": r.kind} for r in model.regions],
        "closure": closure,
    }
    (directory / "model.json").write_text(json.dumps(desc, indent=2, default=float))
    return desc


def load_model_dir(directory) -> tuple[dict, dict]:
    """(spec ready for :func:`build_model`, the ``model.json`` content) of a built model; the
    hashes of the referenced ensembles and event files are checked again."""
    import json

    directory = Path(directory)
    mfile = directory / "model.json"
    if not mfile.is_file():
        raise InputError(
            "not a built model (no model.json; run eftflow build-model)", file=str(directory)
        )
    try:
        desc = json.loads(mfile.read_text())
    except ValueError as err:
        raise InputError(f"malformed JSON ({err})", file=str(mfile)) from None
    if not isinstance(desc, dict) or desc.get("format") != MODEL_FORMAT:
        raise InputError(
            f"unknown format {desc.get('format') if isinstance(desc, dict) else None!r}; "
            f"expected {MODEL_FORMAT!r}",
            file=str(mfile),
            field="format",
        )
    for k, item in enumerate(desc.get("inputs") or []):
        if "copied_to" in item:  # binned workspaces: the copy in the model directory is used
            continue
        p = Path(item["path"])
        if not p.exists():
            raise InputError(
                f"{item['field']}: {str(p)!r} no longer exists",
                file=str(mfile),
                field=f"inputs[{k}]",
            )
        if hash_path(p) != item["sha256"]:
            raise InputError(
                f"{item['field']}: {str(p)!r} changed since the model was built; run "
                "eftflow build-model again",
                file=str(mfile),
                field=f"inputs[{k}]",
            )
    spec = dict(desc["spec"])
    spec["_base"] = str(directory.resolve())
    spec["_file"] = str(mfile)
    return spec, desc
