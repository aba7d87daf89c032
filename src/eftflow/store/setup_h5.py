"""The setup file in MadMiner's HDF5 layout (``setup.h5``).

Layout (MadMiner 0.9.6, ``madminer/utils/interfaces/hdf5.py``): ``parameters/{names, lha_blocks,
lha_ids, max_power, val_ranges, transforms}``, ``benchmarks/{names, values, is_nuisance,
is_reference}``, ``morphing/{components, morphing_matrix}`` (matrix (n_components,
n_physics_benchmarks)), optional ``finite_differences/*``, ``systematics/{names, types, values,
scales}`` and ``nuisance_parameters/{names, systematics, benchmark_positive,
benchmark_negative}``. Strings are fixed-length ASCII ``S256``; ``"None"`` stands for a missing
string. No attributes are required by MadMiner; eftflow adds ``eftflow_version`` and provenance as
file attributes, which MadMiner ignores.

Differences from MadMiner's own writer, deliberately: a parameter without transform is written
as ``"theta"`` (MadMiner writes ``"_"`` and then fails to export cards); systematics values are
decoded on read (MadMiner leaves bytes); norm/pdf systematics save and load (their scale is
``"None"`` as MadMiner's writer intends). MadMiner 0.9.6 itself can neither save nor load a file
with norm or pdf systematics (``SystematicScale.from_str(None)`` raises on load, an assertion
rejects any other scale): interoperability with MadMiner covers setups without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from eftflow.errors import InputError
from eftflow.store.atomic import atomic_path

__all__ = ["write_setup", "read_setup", "reference_flags", "EMPTY"]

EMPTY = "None"


def _enc(strings) -> np.ndarray:
    return np.array(
        [(EMPTY if s is None else str(s)).encode("ascii", "ignore") for s in strings], dtype="S256"
    )


def _dec(values) -> list[str | None]:
    out = []
    for v in np.atleast_1d(values):
        s = v.decode("ascii") if isinstance(v, bytes) else str(v)
        out.append(None if s == EMPTY else s)
    return out


def reference_flags(benches: list[dict]) -> list[bool]:
    """``is_reference`` of each benchmark, the first physics benchmark flagged if none is.

    MadMiner takes its first benchmark as the reference (the nominal weights of its nuisance
    morphing) and flags it in ``benchmarks/is_reference``; its ``NuisanceMorpher`` fails on a
    file that flags none. eftflow uses the same rule and writes the flag this way;
    :func:`read_setup` returns the flags as written (files from older versions flag none), so
    the fingerprints recorded in existing stores stay valid.
    """
    flags = [bool(b["is_reference"]) for b in benches]
    if not any(flags):
        first = next((i for i, b in enumerate(benches) if not b["is_nuisance"]), None)
        if first is not None:
            flags[first] = True
    return flags


def write_setup(path: str | Path, data: dict, *, attrs: dict | None = None) -> None:
    """Write a setup dictionary (as produced by :meth:`eftflow.setup.EFTSetup.to_dict`).

    Keys: ``parameters`` (list of dicts), ``benchmarks`` (list of dicts with name, values list,
    is_nuisance, is_reference), ``components``, ``morphing_matrix`` (or ``None``),
    ``finite_differences`` (``None`` or dict), ``systematics`` (list), ``nuisance_parameters`` (list).
    """
    params = data["parameters"]
    benches = data["benchmarks"]
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(
                "parameters/names", data=_enc([p["name"] for p in params]), dtype="S256"
            )
            f.create_dataset(
                "parameters/lha_blocks", data=_enc([p["lha_block"] for p in params]), dtype="S256"
            )
            f.create_dataset(
                "parameters/lha_ids", data=np.array([p["lha_id"] for p in params], dtype=np.int64)
            )
            f.create_dataset(
                "parameters/max_power",
                data=np.array([p["morphing_max_power"] for p in params], dtype=np.int64),
            )
            f.create_dataset(
                "parameters/val_ranges",
                data=np.array([p["parameter_range"] for p in params], dtype=np.float64).reshape(
                    -1, 2
                ),
            )
            f.create_dataset(
                "parameters/transforms",
                data=_enc([p.get("param_card_transform") or "theta" for p in params]),
                dtype="S256",
            )
            f.create_dataset(
                "benchmarks/names", data=_enc([b["name"] for b in benches]), dtype="S256"
            )
            f.create_dataset(
                "benchmarks/values",
                data=np.array([b["values"] for b in benches], dtype=np.float64).reshape(
                    len(benches), len(params)
                ),
            )
            f.create_dataset(
                "benchmarks/is_nuisance",
                data=np.array([int(b["is_nuisance"]) for b in benches], dtype=np.int64),
            )
            f.create_dataset(
                "benchmarks/is_reference",
                data=np.array(reference_flags(benches), dtype=np.int64),
            )
            if data.get("morphing_matrix") is not None:
                f.create_dataset(
                    "morphing/components", data=np.asarray(data["components"], dtype=np.int64)
                )
                f.create_dataset(
                    "morphing/morphing_matrix",
                    data=np.asarray(data["morphing_matrix"], dtype=np.float64),
                )
            fd = data.get("finite_differences")
            if fd:
                f.create_dataset(
                    "finite_differences/base_benchmarks",
                    data=_enc(fd["base_benchmarks"]),
                    dtype="S256",
                )
                f.create_dataset(
                    "finite_differences/shifted_benchmarks",
                    data=np.array([_enc(row) for row in fd["shifted_benchmarks"]], dtype="S256"),
                )
                f.create_dataset("finite_differences/epsilon", data=float(fd["epsilon"]))
            syst = data.get("systematics") or []
            if syst:
                f.create_dataset(
                    "systematics/names", data=_enc([s["name"] for s in syst]), dtype="S256"
                )
                f.create_dataset(
                    "systematics/types", data=_enc([s["type"] for s in syst]), dtype="S256"
                )
                f.create_dataset(
                    "systematics/values", data=_enc([s["value"] for s in syst]), dtype="S256"
                )
                f.create_dataset(
                    "systematics/scales", data=_enc([s.get("scale") for s in syst]), dtype="S256"
                )
            nps = data.get("nuisance_parameters") or []
            if nps:
                f.create_dataset(
                    "nuisance_parameters/names", data=_enc([n["name"] for n in nps]), dtype="S256"
                )
                f.create_dataset(
                    "nuisance_parameters/systematics",
                    data=_enc([n["systematic"] for n in nps]),
                    dtype="S256",
                )
                f.create_dataset(
                    "nuisance_parameters/benchmark_positive",
                    data=_enc([n["benchmark_positive"] for n in nps]),
                    dtype="S256",
                )
                f.create_dataset(
                    "nuisance_parameters/benchmark_negative",
                    data=_enc([n["benchmark_negative"] for n in nps]),
                    dtype="S256",
                )
            for key, value in (attrs or {}).items():
                f.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)


def _req(f: h5py.File, name: str, path: str):
    if name not in f:
        raise InputError(
            "required dataset is missing: not a MadMiner/eftflow setup file", file=path, field=name
        )
    return f[name][()]


def _sized(values, n: int, name: str, path: str):
    """``values`` if it holds ``n`` entries, else an :class:`InputError` naming the dataset."""
    size = len(values) if isinstance(values, list) else int(np.size(values))
    if size != n:
        raise InputError(
            f"has {size} entries, expected {n} (one per parameter/benchmark)", file=path, field=name
        )
    return values


def read_setup(path: str | Path) -> dict:
    """Read a setup file written by eftflow or by MadMiner (any version ≥ 0.9)."""
    path = str(path)
    if not Path(path).exists():
        raise InputError("file does not exist", file=path)
    if Path(path).is_dir():
        raise InputError(
            "is a directory, not a setup file (the HDF5 file `eftflow setup` writes)", file=path
        )
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"not a readable HDF5 file ({err})", file=path) from None
    with f:
        names = _dec(_req(f, "parameters/names", path))
        n_p = len(names)
        blocks = _sized(
            _dec(_req(f, "parameters/lha_blocks", path)), n_p, "parameters/lha_blocks", path
        )
        ids = _sized(
            np.atleast_1d(_req(f, "parameters/lha_ids", path)), n_p, "parameters/lha_ids", path
        )
        powers = _sized(
            np.atleast_1d(_req(f, "parameters/max_power", path)), n_p, "parameters/max_power", path
        )
        if not np.array_equal(powers, np.round(powers)) or np.any(np.asarray(powers) < 0):
            raise InputError(
                f"max_power must be non-negative integers, got {np.asarray(powers).tolist()}",
                file=path,
                field="parameters/max_power",
            )
        ranges = _sized(
            np.asarray(_req(f, "parameters/val_ranges", path), float),
            2 * n_p,
            "parameters/val_ranges",
            path,
        ).reshape(n_p, 2)
        transforms = (
            _sized(_dec(_req(f, "parameters/transforms", path)), n_p, "parameters/transforms", path)
            if "parameters/transforms" in f
            else [None] * n_p
        )
        params = []
        for i in range(n_p):
            t = transforms[i]
            params.append(
                {
                    "name": names[i],
                    "lha_block": blocks[i],
                    "lha_id": int(ids[i]),
                    "morphing_max_power": int(powers[i]),
                    "parameter_range": [float(ranges[i, 0]), float(ranges[i, 1])],
                    "param_card_transform": None if t in (None, "_", "", "theta") else t,
                }
            )
        b_names = _dec(_req(f, "benchmarks/names", path))
        n_b = len(b_names)
        b_values = _sized(
            np.asarray(_req(f, "benchmarks/values", path), float),
            n_b * n_p,
            "benchmarks/values",
            path,
        ).reshape(n_b, n_p)
        is_nuis = (
            _sized(
                np.atleast_1d(f["benchmarks/is_nuisance"][()]), n_b, "benchmarks/is_nuisance", path
            )
            if "benchmarks/is_nuisance" in f
            else np.zeros(n_b)
        )
        is_ref = (
            _sized(
                np.atleast_1d(f["benchmarks/is_reference"][()]),
                n_b,
                "benchmarks/is_reference",
                path,
            )
            if "benchmarks/is_reference" in f
            else np.zeros(n_b)
        )
        benches = [
            {
                "name": b_names[i],
                "values": [float(v) for v in b_values[i]],
                "is_nuisance": bool(is_nuis[i]),
                "is_reference": bool(is_ref[i]),
            }
            for i in range(n_b)
        ]
        out = {
            "parameters": params,
            "benchmarks": benches,
            "components": None,
            "morphing_matrix": None,
        }
        if ("morphing/components" in f) != ("morphing/morphing_matrix" in f):
            raise InputError(
                "morphing/components and morphing/morphing_matrix must be stored together",
                file=path,
                field="morphing",
            )
        if "morphing/components" in f:
            comps = np.asarray(f["morphing/components"][()])
            if comps.dtype.kind not in "iu" and not np.array_equal(comps, np.round(comps)):
                raise InputError(
                    "morphing components must be integer powers",
                    file=path,
                    field="morphing/components",
                )
            out["components"] = comps.astype(np.int64)
            out["morphing_matrix"] = np.asarray(f["morphing/morphing_matrix"][()], dtype=float)
        out["finite_differences"] = None
        if "finite_differences/base_benchmarks" in f:
            out["finite_differences"] = {
                "base_benchmarks": _dec(f["finite_differences/base_benchmarks"][()]),
                "shifted_benchmarks": [
                    _dec(row) for row in f["finite_differences/shifted_benchmarks"][()]
                ],
                "epsilon": float(f["finite_differences/epsilon"][()]),
            }
        out["systematics"] = []
        if "systematics/names" in f:
            for n, t, v, s in zip(
                _dec(f["systematics/names"][()]),
                _dec(f["systematics/types"][()]),
                _dec(f["systematics/values"][()]),
                _dec(f["systematics/scales"][()]),
            ):
                out["systematics"].append(
                    {"name": n, "type": t, "value": v, "scale": s if t == "scale" else None}
                )
        out["nuisance_parameters"] = []
        if "nuisance_parameters/names" in f:
            for n, s, bp, bn in zip(
                _dec(f["nuisance_parameters/names"][()]),
                _dec(f["nuisance_parameters/systematics"][()]),
                _dec(f["nuisance_parameters/benchmark_positive"][()]),
                _dec(f["nuisance_parameters/benchmark_negative"][()]),
            ):
                out["nuisance_parameters"].append(
                    {"name": n, "systematic": s, "benchmark_positive": bp, "benchmark_negative": bn}
                )
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    _check_setup(out, path)
    return out


def _check_setup(data: dict, path: str) -> None:
    """Reject an inconsistent setup file with an :class:`InputError` naming the dataset.

    Checks that names are unique, benchmark values finite, the morphing components integer
    powers of the declared parameters and the morphing matrix of shape (n_components,
    n_physics_benchmarks) and the (pseudo-)inverse of the benchmark basis, ``M · A = 1`` with
    ``A_bc = Π_p θ_bp^k_cp``: a matrix that does not belong to the stored benchmarks would give
    wrong morphing weights everywhere without any other sign.
    """
    from eftflow.physics.morphing import component_values

    for group, items in (("parameters", data["parameters"]), ("benchmarks", data["benchmarks"])):
        names = [x["name"] for x in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"duplicate name {dup[0]!r}", file=path, field=f"{group}/names")
    values = np.array([b["values"] for b in data["benchmarks"]], float)
    if not np.all(np.isfinite(values)):
        i = int(np.argwhere(~np.isfinite(values))[0, 0])
        name = data["benchmarks"][i]["name"]
        raise InputError(
            f"benchmark {name!r} has a value that is not finite",
            file=path,
            field="benchmarks/values",
        )
    comps, matrix = data["components"], data["morphing_matrix"]
    if comps is None:
        return
    n_p = len(data["parameters"])
    phys = [b for b in data["benchmarks"] if not b["is_nuisance"]]
    if comps.ndim != 2 or comps.shape[1] != n_p or np.any(comps < 0):
        raise InputError(
            f"components must be non-negative integer powers of shape (n_components, {n_p}), "
            f"got shape {comps.shape}",
            file=path,
            field="morphing/components",
        )
    if matrix.shape != (comps.shape[0], len(phys)):
        raise InputError(
            f"morphing matrix must have shape (n_components, n_physics_benchmarks) = "
            f"({comps.shape[0]}, {len(phys)}), got {matrix.shape}",
            file=path,
            field="morphing/morphing_matrix",
        )
    basis = np.array([b["values"] for b in phys], float).reshape(len(phys), n_p)
    a = component_values(basis, comps)  # (n_b, n_c)
    product = matrix @ a
    with np.errstate(all="ignore"):
        sv = np.linalg.svd(a, compute_uv=False) if a.size else np.ones(1)
        cond = sv[0] / sv[-1] if sv[-1] > 0 else np.inf
    tol = 1e-8 + 1e3 * np.finfo(float).eps * min(cond, 1e15)
    err = np.max(np.abs(product - np.eye(comps.shape[0]))) if product.size else 0.0
    if not np.all(np.isfinite(matrix)) or not err <= tol:
        raise InputError(
            f"the morphing matrix does not belong to the stored benchmarks: M·A differs from the "
            f"identity by {err:.3g} (the benchmarks or the matrix were changed)",
            file=path,
            field="morphing/morphing_matrix",
        )
