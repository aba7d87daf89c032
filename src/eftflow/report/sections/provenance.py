"""Section "Provenance": where every input of the results came from."""

from __future__ import annotations

import json

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, report_section
from eftflow.report.sections._stores import job_stores

__all__ = ["cell"]

_KEYS = ("stage", "date", "eftflow_version", "generator", "backend", "seed", "global_seed",
         "config_hash", "slurm_job_id", "slurm_array_task_id")  # fmt: skip


def cell(value):
    """A provenance value for a table cell: a nested record (the generator's, say) as its name
    and versions (the whole record stays in the file's provenance), else the value."""
    if isinstance(value, dict):
        name = next((value[k] for k in ("generator", "backend", "name") if value.get(k)), "")
        versions = [f"{k.removesuffix('_version')} {v}" for k, v in value.items()
                    if k.endswith("version") and isinstance(v, str | int | float)]  # fmt: skip
        return " · ".join(str(x) for x in [name, *versions] if x) or "(record)"
    return value


def _chain(prov: dict) -> list[dict]:
    """The record and its ``upstream`` records, outermost first."""
    out = []
    while isinstance(prov, dict) and prov:
        out.append(prov)
        prov = prov.get("upstream")
    return out


@report_section("Provenance", order=90)
def provenance(ctx: ReportContext) -> str:
    rows = []
    try:
        import h5py

        setup = ctx.require(ctx.path("setup", "setup.h5"))[0]
        with h5py.File(setup, "r") as f:
            prov = json.loads(f.attrs.get("provenance", "{}"))
        rows.append([ctx.display(setup), "setup", *[cell(prov.get(k, "")) for k in _KEYS[1:]]])
    except SectionSkipped:
        pass
    try:
        jobs = job_stores(ctx)
    except SectionSkipped:
        jobs = []
    for j in jobs:
        for k, rec in enumerate(_chain(j["store"].provenance)):
            label = ctx.display(j["path"]) if k == 0 else "  ↳ upstream"
            rows.append([label, *[cell(rec.get(key, "")) for key in _KEYS]][: len(_KEYS) + 1])
    try:
        store = ctx.combined_store()
        prov = store.provenance
        rows.append(
            [ctx.display(store.path), *[cell(prov.get(k, "")) for k in _KEYS]][: len(_KEYS) + 1]
        )
    except SectionSkipped:
        store = None
    if not rows:
        raise SectionSkipped("no setup file and no event stores")
    header = ["file", *[k.replace("_", " ") for k in _KEYS]]
    used = [i for i in range(len(header)) if i == 0 or any(r[i] not in ("", None) for r in rows)]
    rows = [[r[i] for i in used] for r in rows]
    out = [
        H.table(
            rows,
            header=[header[i] for i in used],
            caption="Every input file with the provenance it records (↳: the stage before it)",
        )
    ]
    if store is not None:
        out.append(
            H.details("provenance of the combined store (JSON)", H.json_block(store.provenance))
        )
    return "\n".join(out)
