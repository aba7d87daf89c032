"""The workflow's own statistical model: a model spec written from the run's outputs.

``eftflow write-model-spec`` (rule ``write_model_spec``) writes the spec of the default
workflow's model (config ``model.demo``), which ``build-model`` and ``infer`` then take like any
user spec:

* one unbinned region whose **pool** is a partition of the combined event store (by default the
  test partition, which the estimators never saw), in the observables the ratio ensemble was
  trained on, weighted at the reference point θ1 the ratio was trained against (option
  ``reference``, the SM benchmark by default; checked against the training set's ``theta1``);
* one process whose per-event log r̂(x|θ) is the parameterised ratio ensemble
  (``train_ratio_ensemble``) and whose yield is ν(θ) = L·σ(θ), σ(θ) from the setup's morphing
  and the store's per-benchmark cross sections;
* the theory parameters of the setup with their ``parameter_range`` as bounds, the
  systematics as ``normsys`` nuisances: every nuisance parameter the store has weights for with
  its rate at ν = ±1 over the rate at 0 (:func:`rate_effects`: a ``scale`` or ``pdf`` systematic
  enters through its effect on the rate, not on the shapes), a ``norm`` systematic without
  weights with its factor; and optionally the ensemble-spread parameter of the region (finite
  training statistics);
* Asimov data at the reference point, MINOS, a profile of the POI, the contour of the first two
  floating parameters, impacts and toys for the coverage of the POI's intervals.

Example
-------
>>> spec = demo_spec(parameters=[("W", -1e-3, 1e-3), ("Y", -1e-3, 1e-3)],
...                  observables=["m_ll"], normsys={"lumi": 1.02}, store="events.zarr",
...                  setup="setup.h5", ensemble="ens", reference="sm",
...                  options={"poi": "W", "luminosity": 1e5})
>>> spec["unbinned"][0]["processes"][0]["rate"]["luminosity"], spec["poi"]
(100000.0, 'W')
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = [
    "DEMO_DEFAULTS",
    "demo_spec",
    "write_demo_spec",
    "ensemble_training_info",
    "rate_effects",
]

log = logging.getLogger(__name__)

#: defaults of the options (config ``model.demo``, less the estimator and switches)
DEMO_DEFAULTS = {
    "poi": None,
    "fixed": [],
    "luminosity": 100000.0,
    "partition": "test",
    "max_events": None,
    "spread": True,
    "n_toys": 100,
    "toy_batch": 100,
    "contour": True,
    "closure_eps": 0.01,
    "reference": "sm",
    "seed": 1,
}


def ensemble_training_info(ensemble) -> dict:
    """Method, observable and parameter names, number of parameter inputs and training-set path
    of a ratio ensemble directory (from what its first member recorded)."""
    ens = Path(ensemble)
    first = ens / "member_0.json"
    if not first.is_file():
        raise InputError("not an ensemble directory (no member_0.json)", file=str(ens))
    try:
        spec = json.loads(first.read_text())
    except ValueError as err:
        raise InputError(f"malformed JSON ({err})", file=str(first)) from None
    if spec.get("family") != "ratio":
        raise InputError(
            f"the statistical model needs a likelihood-ratio ensemble; {spec.get('method')!r} "
            "estimates a " + str(spec.get("family")),
            file=str(first),
            field="family",
        )
    attrs = spec.get("training_set_attrs") or {}
    if "observable_names" not in attrs or "parameter_names" not in attrs:
        raise InputError(
            "the members do not record the observables and parameters of their training set",
            file=str(first),
            field="training_set_attrs",
        )
    return {
        "method": spec.get("method"),
        "observables": list(attrs["observable_names"]),
        "parameters": list(attrs["parameter_names"]),
        "n_parameters": int(((spec.get("model") or {}).get("kwargs") or {}).get("n_parameters", 0)),
        "training_set": spec.get("training_set"),
    }


def demo_spec(
    *,
    parameters: Sequence[tuple[str, float, float]],
    observables: Sequence[str],
    normsys: Mapping[str, float],
    store: str,
    setup: str,
    ensemble: str,
    reference,
    options: Mapping,
    asimov_point: Mapping[str, float] | None = None,
    updown: Mapping[str, Mapping[str, str]] | None = None,
) -> dict:
    """The spec (a dict, paths as given) of the workflow's model.

    Parameters
    ----------
    parameters
        (name, lower, upper) of each theory parameter, in the estimator's θ order.
    observables
        Columns of the store the estimator takes.
    normsys
        {nuisance name: relative yield at ν = +1 (lo = 1/hi), or [hi, lo] at ν = ±1}.
    store, setup, ensemble
        Paths (relative to the spec file) of the combined store, setup file, ratio ensemble.
    reference
        The reference point θ1 of the ratio (benchmark name or {parameter: value}) at which
        the pool is weighted.
    asimov_point
        {parameter: value} of the Asimov data (default: all parameters 0).
    updown
        {nuisance name: {"up": path, "down": path}}: x-only ratio networks of the shape
        effect of nuisance parameters (:mod:`eftflow.inference.model.shapes`); their rate
        effect stays in ``normsys``.
    options
        :data:`DEMO_DEFAULTS` keys.
    """
    opt = {**DEMO_DEFAULTS, **{k: v for k, v in options.items() if k in DEMO_DEFAULTS}}
    names = [p[0] for p in parameters]
    poi = opt["poi"] or names[0]
    for field, values in (("poi", [poi]), ("fixed", list(opt["fixed"]))):
        for v in values:
            if v not in names:
                raise ConfigError(
                    f"{v!r} is no parameter of the setup ({', '.join(names)})",
                    field=f"model.demo.{field}",
                )
    if poi in opt["fixed"]:
        raise ConfigError(f"the POI {poi!r} cannot be fixed", field="model.demo.fixed")
    asimov = asimov_point or {n: 0.0 for n in names}
    pars = [
        {"name": n, "init": 0.0, "lower": float(lo), "upper": float(hi), "kind": "free"}
        | ({"fixed": True} if n in opt["fixed"] else {})
        for n, lo, hi in parameters
    ]
    region = {
        "name": "sr",
        "store": store,
        "partition": opt["partition"],
        "observables": list(observables),
        "pool_weights": {"setup": setup, "theta": reference},
        "processes": [
            {
                "name": "signal",
                "ensemble": ensemble,
                "parameters": names,
                "rate": {"setup": setup, "store": store, "luminosity": float(opt["luminosity"])},
                "normsys": {n: _hi_lo(v) for n, v in normsys.items()},
            }
        ],
    }
    if updown:
        region["processes"][0]["updown"] = {
            n: {"up": str(d["up"]), "down": str(d["down"])} for n, d in updown.items()
        }
    if opt["max_events"] is not None:
        region["max_events"] = int(opt["max_events"])
    if opt["spread"]:
        region["spread"] = {"name": "gamma_sr"}
    free = [n for n in names if n not in opt["fixed"]]
    inference = {
        "profiles": [poi],
        "contours": [[free[0], free[1]]] if opt["contour"] and len(free) > 1 else [],
        "impacts": True,
        "cls": False,
        "closure_eps": float(opt["closure_eps"]),
    }
    if int(opt["n_toys"]) > 0:
        inference["toys"] = {
            "n_toys": int(opt["n_toys"]),
            "seed": int(opt["seed"]),
            "batch": int(opt["toy_batch"]),
        }
    spec = {
        "poi": poi,
        "device": "cpu",
        "parameters": pars,
        "unbinned": [region],
        "data": "asimov",
        "asimov": asimov,
        "inference": inference,
    }
    return spec


def write_demo_spec(
    output, *, store, setup, ensemble, options: Mapping, nuisance_shapes=None
) -> dict:
    """Write the spec of the workflow's model to ``output`` (YAML, atomically) from the combined
    ``store``, the ``setup`` file and the ratio ``ensemble`` directory (and the up/down
    networks of ``nuisance_shapes``, a :func:`~eftflow.inference.model.shapes.
    train_nuisance_shapes` directory); paths in the spec are relative to its directory.
    Returns the spec."""
    import yaml

    from eftflow.setup import EFTSetup
    from eftflow.store.atomic import atomic_path

    from .store_source import reference_theta

    output = Path(output)
    for what, p in (("store", store), ("setup", setup), ("ensemble", ensemble)):
        if not Path(p).exists():
            raise InputError(f"{what} {str(p)!r} does not exist", field=what)
    from eftflow.store.events import EventStore

    EventStore(store)  # refuses anything but a complete event store, naming it
    info = ensemble_training_info(ensemble)
    st = EFTSetup.from_file(setup)
    ranges = {p.name: p.parameter_range for p in st.parameters.values()}
    if info["parameters"] != list(st.parameter_names):
        raise InputError(
            f"the ensemble was trained on θ = ({', '.join(info['parameters'])}), the setup has "
            f"({', '.join(st.parameter_names)})",
            file=str(ensemble),
            field="parameters",
        )
    if info["n_parameters"] != len(info["parameters"]):
        raise InputError(
            f"the ensemble takes {info['n_parameters']} parameter inputs, the setup has "
            f"{len(info['parameters'])} parameters: parameterised in nuisances too? The "
            "workflow's model feeds θ only (write the spec by hand)",
            file=str(ensemble),
            field="n_parameters",
        )
    normsys: dict = {}
    for nu in st.nuisance_parameters.values():
        syst = st.systematics.get(nu.systematic)
        if syst is not None and syst.type == "norm":
            normsys[nu.name] = float(syst.value)
    normsys.update(rate_effects(store, st))  # every nuisance the store has weights for
    reference = options.get("reference", "sm")
    theta_ref = reference_theta(st, reference, field="model.demo.reference")
    _check_reference(info["training_set"], theta_ref, str(ensemble))
    base = output.parent
    rel = lambda p: os.path.relpath(Path(p).resolve(), base.resolve())  # noqa: E731
    updown = None
    if nuisance_shapes is not None:
        from .shapes import updown_entries

        updown = updown_entries(nuisance_shapes, observables=info["observables"], relative_to=base)
        unknown = sorted(set(updown) - set(normsys))
        if unknown:
            raise InputError(
                f"the shape networks are for {', '.join(unknown)}, which the store has no "
                "nuisance weights for (trained on another store?)",
                file=str(nuisance_shapes),
                field="nuisances",
            )
    spec = demo_spec(
        parameters=[(n, *map(float, ranges[n])) for n in st.parameter_names],
        observables=info["observables"],
        normsys=normsys,
        store=rel(store),
        setup=rel(setup),
        ensemble=rel(ensemble),
        reference=reference,
        options=options,
        asimov_point=dict(zip(st.parameter_names, map(float, theta_ref))),
        updown=updown,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as tmp:
        tmp.write_text(
            "# The workflow's statistical model (written by eftflow write-model-spec from the "
            "run's outputs;\n# see docs/statistical-model.md). Paths are relative to this file.\n"
            + yaml.safe_dump(spec, sort_keys=False)
        )
    log.info("wrote %s (%s ensemble, POI %s)", output, info["method"], spec["poi"])
    return spec


def _hi_lo(value) -> list[float]:
    if isinstance(value, list | tuple):
        return [float(value[0]), float(value[1])]
    return [float(value), 1.0 / float(value)]


def rate_effects(store, setup) -> dict[str, list[float]]:
    """``{nuisance: [hi, lo]}``: the total rate at ν = +1 and −1 over the rate at 0, for every
    nuisance parameter the store has weights for (streamed over the whole store).

    The rate is that of the setup's reference benchmark; each event's weight at ν follows
    MadMiner's interpolation (:mod:`eftflow.physics.nuisance`). A one-sided parameter gets
    lo = 1/hi. This is how the workflow's model takes ``scale`` and ``pdf`` systematics: their
    effect on the rate, not on the shape of the distributions.
    """
    from eftflow.sampling.weights import WeightModel, load_chunk

    wm = WeightModel(store, setup, partition="all", include_nuisance=True)
    if not wm.n_nuisance:
        return {}
    ref = setup.benchmarks[setup.reference_benchmark].vector(setup.parameter_names)
    m = wm.theta_matrix(ref[None, :])[0]
    s0, s_plus, s_minus = 0.0, np.zeros(wm.n_nuisance), np.zeros(wm.n_nuisance)
    for i0, i1 in wm.chunk_ranges():
        ch = load_chunk(wm.ctx, i0, i1, None)
        w0 = ch.W @ m
        s0 += float(w0.sum())
        s_plus += (w0 * np.exp(ch.a + ch.b)).sum(axis=1)
        s_minus += (w0 * np.exp(-ch.a + ch.b)).sum(axis=1)
    if not s0 > 0:
        raise InputError(
            "the store's rate at the reference benchmark is not positive",
            file=str(wm.store.path),
            field="weights",
        )
    out = {}
    for k, name in enumerate(wm.nuisance_names):
        hi = float(s_plus[k] / s0)
        lo = float(s_minus[k] / s0) if wm.ctx.nu_neg[k] is not None else 1.0 / hi
        out[name] = [hi, lo]
    return out


def _check_reference(training_set, theta_ref, file) -> None:
    """The training set's θ1 column (where the set is still there) must be the reference."""
    import numpy as np
    import zarr

    if not training_set or not Path(training_set).exists():
        return
    group = zarr.open_group(str(training_set), mode="r")
    if "theta1" not in group:
        return
    t1 = np.asarray(group["theta1"][: min(10000, group["theta1"].shape[0])], float)
    t1 = t1[:, : len(theta_ref)]
    if not np.allclose(t1, theta_ref[None], rtol=0, atol=1e-12):
        raise InputError(
            f"the ensemble was trained against θ1 = {t1[0].tolist()} (training set "
            f"{training_set}), not the reference point {theta_ref.tolist()} of model.demo",
            file=file,
            field="model.demo.reference",
        )
