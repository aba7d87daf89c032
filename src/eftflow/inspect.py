"""What is in an output: a summary of any file or directory eftflow writes (``eftflow inspect``).

:func:`inspect_path` recognises

* zarr stores by the ``format`` of their group attributes: event stores (``eftflow-events``:
  events, observables, benchmarks, partitions, signal/background counts, optionally the cross
  section of every benchmark as MadMiner estimates it, Σ w × sampling factors, streamed chunk by
  chunk), particle and object stores, training sets
  (``eftflow-training``) and any other zarr v3 group (its arrays only);
* setup files (``setup.h5``, eftflow's or MadMiner's layout: parameters, benchmarks, morphing
  components, systematics) and MadMiner event files (``samples/observations``);
* built models (a directory with ``model.json``), ensembles (``ensemble.json``, or its directory)
  and single estimators (``<name>.json`` of format ``eftflow-estimator``);
* LHE files (``.lhe``, ``.lhe.gz``, from the generators or MadGraph): beams, PDF, normalisation,
  events declared, the weight groups (benchmark weights, scale variations as (MUR, MUF) pairs,
  PDF sets with their error type and members) and, with ``cross_sections``, Σ of every weight
  over the file (one streamed pass).

Every summary has ``path``, ``kind`` and, where the output records it, ``provenance`` (eftflow
version, date, stage, seeds, config hash, SLURM job); stores list their ``arrays`` (shape,
dtype, rows per chunk, bytes on disk). Nothing is loaded whole: arrays are described from their
``zarr.json``. :func:`format_summary` renders a summary as indented text.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from eftflow.store.events import EventStoreWriter
>>> path = pathlib.Path(tempfile.mkdtemp()) / "events.zarr"
>>> with EventStoreWriter(path, ["x"], ["sm", "bsm"], chunk_size=4) as w:
...     w.append(observables=np.zeros((10, 1)), weights=np.full((10, 2), 0.1))
>>> info = inspect_path(path, cross_sections=True)
>>> info["kind"], info["n_events"], info["benchmarks"]
('event store', 10, ['sm', 'bsm'])
>>> [round(v, 6) for v in info["cross_sections_pb"].values()]
[1.0, 1.0]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from eftflow.errors import InputError

__all__ = ["inspect_path", "format_summary"]

#: provenance keys shown first (the rest follow in the file's order)
_PROVENANCE_FIRST = ("stage", "eftflow_version", "date", "seed", "config_hash", "slurm_job_id")


def inspect_path(path, *, cross_sections: bool = False) -> dict[str, Any]:
    """A JSON-able summary of the eftflow output at ``path`` (see the module docstring).

    ``cross_sections`` adds, for event stores, Σ weights per benchmark in pb (one streamed pass
    over the weights). Anything else raises :class:`~eftflow.errors.InputError` naming the path.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("does not exist", file=str(p))
    if p.is_dir():
        if (p / "zarr.json").is_file():
            return _zarr_group(p, cross_sections)
        if (p / "model.json").is_file():
            return _built_model(p)
        if (p / "ensemble.json").is_file():
            return _ensemble(p / "ensemble.json")
        if (p / "summary.json").is_file():
            return _nuisance_shapes(p)
        raise InputError(
            "not an eftflow output (no zarr.json, model.json, ensemble.json or summary.json in it)",
            file=str(p),
        )
    if p.name.lower().endswith((".lhe", ".lhe.gz", ".lhef", ".lhef.gz")):
        return _lhe(p, cross_sections)
    if p.suffix in (".h5", ".hdf5"):
        return _hdf5(p)
    if p.suffix == ".json":
        return _json(p)
    raise InputError(
        "not an eftflow output (expected a zarr store, .h5 file, .json file, LHE file or model "
        "directory)",
        file=str(p),
    )


# -- zarr stores ------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except ValueError as err:
        raise InputError(f"malformed JSON ({err})", file=str(path)) from None
    except OSError as err:
        raise InputError(f"cannot read ({err.strerror})", file=str(path)) from None


def _arrays(root: Path) -> dict[str, dict]:
    """``{relative name: {shape, dtype, chunk_rows, bytes}}`` of the arrays under ``root``."""
    out = {}
    for meta_file in sorted(root.rglob("zarr.json")):
        if meta_file.parent == root:
            continue
        meta = _read_json(meta_file)
        if not isinstance(meta, dict) or meta.get("node_type") != "array":
            continue
        try:
            chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
        except (KeyError, TypeError):
            chunks = [None]
        directory = meta_file.parent
        size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        out[str(directory.relative_to(root))] = {
            "shape": list(meta.get("shape", [])),
            "dtype": str(meta.get("data_type")),
            "chunk_rows": chunks[0] if chunks else None,
            "bytes": size,
        }
    return out


def _provenance(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    out = {k: value[k] for k in _PROVENANCE_FIRST if k in value}
    for k, v in value.items():
        if k in out:
            continue
        if k == "inputs" and isinstance(v, list):
            out["inputs"] = f"{len(v)} input(s), each with its own provenance"
        else:
            out[k] = v
    return out


def _zarr_group(p: Path, cross_sections: bool) -> dict:
    meta = _read_json(p / "zarr.json")
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    fmt = attrs.get("format")
    info: dict[str, Any] = {"path": str(p), "format": fmt}
    if fmt == "eftflow-events":
        info.update(_event_store(p, cross_sections))
    elif fmt == "eftflow-training":
        info["kind"] = "training set"
        info["n_samples"] = attrs.get("n_samples")
        for key in ("method", "observable_names", "parameter_names", "nuisance_names"):
            if key in attrs:
                info[key] = attrs[key]
        info["setup_hash"] = attrs.get("setup_hash")
        bal = attrs.get("balance")
        if isinstance(bal, dict):  # drawn ∝ w·c(x): say where and how much
            edges = ", ".join(f"{e:g}" for e in bal.get("edges") or [])
            shares = lambda key: ", ".join(f"{v:.3g}" for v in bal.get(key) or [])  # noqa: E731
            info["balance"] = (
                f"{bal.get('observable')} bins at [{edges}]: shares at {bal.get('reference')} "
                f"{shares('share_unbalanced')} -> {shares('share_balanced')} (estimators "
                "trained on it correct for it)"
            )
    elif fmt in ("eftflow-particles", "eftflow-objects"):
        info["kind"] = "particle store" if fmt == "eftflow-particles" else "object store"
        if "n_events" not in attrs:
            raise InputError(
                "incomplete store (no n_events: its writer did not finish)",
                file=str(p),
                field="attrs.n_events",
            )
        info["n_events"] = int(attrs["n_events"])
        info["benchmarks"] = attrs.get("benchmark_names")
        if fmt == "eftflow-objects":
            info["collections"] = {
                name: c.get("fields") for name, c in (attrs.get("collections") or {}).items()
            }
            info["detector"] = attrs.get("detector")
        else:
            info["n_particles"] = attrs.get("n_particles")
    else:
        info["kind"] = "zarr group" if fmt is None else f"zarr group of format {fmt!r}"
    info["provenance"] = _provenance(attrs.get("provenance"))
    info["arrays"] = _arrays(p)
    info["bytes"] = sum(a["bytes"] for a in info["arrays"].values())
    return {k: v for k, v in info.items() if v is not None}


def _event_store(p: Path, cross_sections: bool) -> dict:
    from eftflow.store.events import EventStore

    store = EventStore(p)  # checks completeness and the arrays
    a = store.attrs
    info: dict[str, Any] = {
        "kind": "event store",
        "n_events": store.n_events,
        "observables": store.observable_names,
        "benchmarks": store.benchmark_names,
        "nuisance_benchmarks": store.nuisance_benchmark_names,
        "chunk_size": store.chunk_size,
        "partitions": store.partitions,
    }
    if "signal_events" in a:
        info["events_per_sampling_benchmark"] = dict(
            zip(store.benchmark_names, a["signal_events"], strict=False)
        )
        info["background_events"] = a.get("background_events")
    for key in ("shuffle_seed", "k_factors", "setup_hash"):
        if a.get(key) is not None:
            info[key] = a[key]
    if a.get("input_files"):
        info["inputs"] = len(a["input_files"])
    if cross_sections:
        info["cross_sections_pb"] = dict(
            zip(store.benchmark_names, map(float, _cross_sections(store)), strict=True)
        )
    return info


def _cross_sections(store) -> np.ndarray:
    """σ of every benchmark in pb, MadMiner's way: Σ w × the sampling factor of each event's
    sampling benchmark (a store mixing samples generated at several benchmarks averages their
    estimates; background events count once). Streamed chunk by chunk."""
    from eftflow.store.combine import sampling_factors

    factors = sampling_factors(store)
    total = np.zeros(len(store.benchmark_names))
    for c in store.iter_chunks(["weights", "sampling_benchmark"]):
        total += (c["weights"] * factors[c["sampling_benchmark"]][:, None]).sum(axis=0)
    return total


# -- files and directories of other stages ------------------------------------------------------


def _hdf5(p: Path) -> dict:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            keys = set(f.keys())
            is_events = "samples" in keys and "observations" in f["samples"]
            n_events = int(f["samples/observations"].shape[0]) if is_events else None
            obs = (
                [n.decode() if isinstance(n, bytes) else str(n) for n in f["observables/names"][()]]
                if is_events and "observables" in keys
                else None
            )
    except OSError as err:
        raise InputError(f"not a readable HDF5 file ({err})", file=str(p)) from None
    if "benchmarks" not in keys and not is_events:
        raise InputError(
            "an HDF5 file without benchmarks or samples: not a setup or MadMiner event file",
            file=str(p),
        )
    from eftflow.setup import EFTSetup

    setup = EFTSetup.from_file(p)
    names = setup.parameter_names
    info: dict[str, Any] = {
        "path": str(p),
        "kind": "MadMiner event file" if is_events else "setup",
        "parameters": {
            n: {
                "range": tuple(par.parameter_range) if par.parameter_range else None,
                "morphing_max_power": par.morphing_max_power,
            }
            for n, par in setup.parameters.items()
        },
        "benchmarks": {
            b.name: dict(zip(names, map(float, b.vector(names)), strict=True))
            for b in setup.benchmarks.values()
            if not b.is_nuisance
        },
        "morphing_components": None if setup.components is None else len(setup.components),
        "systematics": {s.name: s.type for s in setup.systematics.values()} or None,
        "nuisance_parameters": list(setup.nuisance_parameters) or None,
    }
    if is_events:
        info.update(n_events=n_events, observables=obs)
    return {k: v for k, v in info.items() if v is not None}


def _lhe(p: Path, cross_sections: bool) -> dict:
    from eftflow.generate.lhe import LHEReader, read_lhe_header

    h = read_lhe_header(p)
    groups: dict[str, dict] = {}
    for w in h.weights:
        g = groups.setdefault(
            w.group or "(no group)",
            {"combine": w.group_attrs.get("combine"), "n_weights": 0, "ids": []},
        )
        g["n_weights"] += 1
        g["ids"].append(w.id)
        a = w.attrs
        if "MUR" in a and "MUF" in a and "scale variation" in (w.group or "").lower():
            extra = " (dynamical scale " + a["DYN_SCALE"] + ")" if "DYN_SCALE" in a else ""
            g.setdefault("scale_variations", []).append(f"({a['MUR']}, {a['MUF']}){extra}")
        elif "PDF" in a:
            g.setdefault("pdf_ids", []).append(a["PDF"])
    for g in groups.values():
        ids = g.pop("ids")
        g["weight_ids"] = ids if len(ids) <= 8 else [*ids[:4], "…", *ids[-2:]]
        pdf = g.pop("pdf_ids", None)
        if pdf and "scale_variations" not in g:
            g["pdf_members"] = f"{len(pdf)} (PDF {pdf[0]} … {pdf[-1]})" if len(pdf) > 1 else pdf[0]
    init = h.init
    info = {
        "path": str(p),
        "kind": "LHE file",
        "generator": h.mg_version
        and f"MadGraph {h.mg_version}"
        or (h.eftflow.get("provenance") or {}).get("generator"),
        "beams": f"{init.beam_ids[0]} {init.beam_ids[1]} at {init.beam_energies[0]:g} + "
        f"{init.beam_energies[1]:g} GeV",
        "pdf_sets": list(init.pdf_sets),
        "idwtup": init.weighting_strategy,
        "event_norm": h.event_norm,
        "n_events_declared": h.n_events,
        "cross_section_pb (init)": init.cross_section,
        "weight_groups": {
            k: {x: y for x, y in v.items() if y is not None} for k, v in groups.items()
        },
        "provenance": _provenance(h.eftflow.get("provenance")),
    }
    if cross_sections:
        info["cross_sections_pb"] = LHEReader(p, negative_weights="allow").cross_sections()
    return {k: v for k, v in info.items() if v is not None}


def _json(p: Path) -> dict:
    doc = _read_json(p)
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt == "eftflow-ensemble":
        return _ensemble(p)
    if fmt == "eftflow-estimator":
        attrs = doc.get("training_set_attrs") or {}
        summary = doc.get("summary") or {}
        info = {
            "path": str(p),
            "kind": "estimator",
            "format": fmt,
            "method": doc.get("method"),
            "family": doc.get("family"),
            "class": (doc.get("model") or {}).get("class"),
            "observables": attrs.get("observable_names"),
            "parameters": attrs.get("parameter_names"),
            "training_set": doc.get("training_set"),
            "ensemble_member": doc.get("ensemble_member"),
            "best_loss": summary.get("best_loss"),
            "epochs_run": summary.get("epochs_run"),
            "eftflow_version": doc.get("eftflow_version"),
            "torch_version": doc.get("torch_version"),
        }
        return {k: v for k, v in info.items() if v is not None}
    if fmt == "eftflow-model/1" or p.name == "model.json":
        return _built_model(p.parent)
    raise InputError(
        f"a JSON file of format {fmt!r}: not an estimator, ensemble or built model", file=str(p)
    )


def _ensemble(p: Path) -> dict:
    doc = _read_json(p)
    results = doc.get("results") or []
    return {
        "path": str(p.parent),
        "kind": "ensemble",
        "method": doc.get("method"),
        "n_members": doc.get("n_members"),
        "best_loss": [r.get("best_loss") for r in results],
        "epochs_run": [r.get("epochs_run") for r in results],
    }


def _nuisance_shapes(directory: Path) -> dict:
    """A ``train-nuisance-shapes`` directory: per nuisance and side its closure checks."""
    from eftflow.inference.model.shapes import load_shapes, worst_closure

    doc = load_shapes(directory)
    out: dict[str, Any] = {
        "path": str(directory),
        "kind": "nuisance shape networks",
        "method": (doc.get("options") or {}).get("method"),
        "reference": doc.get("reference"),
        "store": doc.get("store"),
        "provenance": _provenance(doc.get("provenance")),
    }
    for name, entry in doc["nuisances"].items():
        for side in ("up", "down"):
            c = (entry.get("check") or {}).get(side) or {}
            hist, worst = worst_closure(c)
            out[f"{name} {side}"] = (
                f"rate ×{_text(c.get('rate'))}, E0[g] {_text(c.get('mean_g'))}, RMS log g "
                f"{_text(c.get('shape_rms'))}, corr. {_text(c.get('correlation'))}"
                + (f", max hist. diff. {_text(hist)}" if hist is not None else "")
                + (f", worst hist. χ²/ndf {worst['chi2']:.1f}/{worst['ndf']}" if worst else "")
            )
    return out


def _built_model(directory: Path) -> dict:
    doc = _read_json(directory / "model.json")
    if not isinstance(doc, dict):
        raise InputError("not a built model description", file=str(directory / "model.json"))
    closure = doc.get("closure") or {}
    out = {
        "path": str(directory),
        "kind": "built model",
        "format": doc.get("format"),
        "eftflow_version": doc.get("eftflow_version"),
        "poi": doc.get("poi"),
        "regions": [f"{r.get('name')} ({r.get('kind')})" for r in doc.get("regions") or []],
        "parameters": [p.get("name") for p in doc.get("parameters") or []],
        "inputs": [i.get("field") for i in doc.get("inputs") or []],
        "closure_passed": closure.get("passed"),
    }
    for d in doc.get("diagnostics") or []:  # one per region/process whose ratio is an ensemble
        warnings = d.get("warnings") or []
        out[f"diagnostics {d.get('region')}/{d.get('process')}"] = (
            "passed" if not warnings else f"{len(warnings)} warning(s): " + "; ".join(warnings)
        )
    return out


# -- text ---------------------------------------------------------------------------------------


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _text(value) -> str:
    """A value on one line: floats to 6 significant digits, lists comma-separated, dicts as
    ``key=value`` pairs, ranges (pairs as tuples) ``[a, b]``."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, tuple) and len(value) == 2:  # a range
        return f"[{_text(value[0])}, {_text(value[1])}]"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "none"
    return str(value)


def format_summary(info: dict) -> str:
    """``info`` of :func:`inspect_path` as indented text (one key per line; the entries of
    named tables such as ``benchmarks`` or ``provenance`` one per line below it)."""
    lines = [f"{info['path']}: {info['kind']}"]

    def add(key, value):
        if isinstance(value, dict) and value and key != "partitions":
            lines.append(f"  {key}:")
            for k, v in value.items():
                lines.append(f"    {k}: {_text(v)}")
        elif key == "partitions":
            lines.append(f"  {key}: " + ", ".join(f"{k} [{a}, {b})" for k, (a, b) in value.items()))
        elif key == "bytes":
            lines.append(f"  {key}: {_size(int(value))} on disk")
        else:
            lines.append(f"  {key}: {_text(value)}")

    for key, value in info.items():
        if key in ("path", "kind"):
            continue
        if key == "arrays":
            lines.append("  arrays:")
            for name, a in value.items():
                shape = "×".join(map(str, a["shape"]))
                lines.append(
                    f"    {name}: {shape} {a['dtype']}, {a['chunk_rows']} rows per chunk, "
                    f"{_size(a['bytes'])}"
                )
            continue
        add(key, value)
    return "\n".join(lines)
