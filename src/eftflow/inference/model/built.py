"""Built models: the directory ``eftflow build-model`` writes and ``eftflow infer`` reads.

A built model is a directory with ``model.json`` (format :data:`MODEL_FORMAT`: the resolved spec
with absolute paths, the SHA-256 of every referenced ensemble / event file, the parameter table,
the Asimov closure result) and ``binned/<region>.json`` (the pyhf workspace of each binned
region, which the built model reads instead of the original; its SHA-256 is recorded too).
:func:`load_model_dir` checks the hashes again, so a built model never silently fits other
inputs than it was built with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "MODEL_FORMAT",
    "hash_path",
    "resolve_spec",
    "parameter_table",
    "write_model_dir",
    "load_model_dir",
]

#: ``format`` of a built model's model.json
MODEL_FORMAT = "eftflow-model/1"


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
        copy = directory / "binned" / f"{b['name']}.json"
        copy.write_text(json.dumps(ws, indent=1))
        b["source_workspace"] = b["workspace"]
        b["workspace"] = f"binned/{b['name']}.json"  # relative to the model directory
        inputs[k]["copied_to"] = b["workspace"]
        inputs[k]["copy_sha256"] = hash_path(copy)
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


def _check_copy(directory: Path, mfile: Path, k: int, item: dict) -> None:
    """The copy of a binned workspace in a built model exists and is as it was written."""
    copy = directory / str(item["copied_to"])
    if not copy.is_file():
        raise InputError(
            f"{item['field']}: the model's copy {str(copy)!r} is missing; run eftflow "
            "build-model again",
            file=str(mfile),
            field=f"inputs[{k}].copied_to",
        )
    if "copy_sha256" in item and hash_path(copy) != item["copy_sha256"]:
        raise InputError(
            f"{item['field']}: the model's copy {str(copy)!r} changed since the model was "
            "built; run eftflow build-model again",
            file=str(mfile),
            field=f"inputs[{k}].copied_to",
        )


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
            _check_copy(directory, mfile, k, item)
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
