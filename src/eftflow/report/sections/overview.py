"""Section "Overview": the run at a glance (numbers gathered from the other results)."""

from __future__ import annotations

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, report_section

__all__: list[str] = []


@report_section("Overview", order=10)
def overview(ctx: ReportContext) -> str:
    cfg = ctx.config
    rows = []
    if cfg:
        from eftflow.config import config_hash

        gen = cfg.get("generation") or {}
        rows += [
            ("run name", cfg.get("run_name") or "(none: results/)"),
            ("config hash", config_hash(dict(cfg))),
            ("global seed", cfg.get("seed")),
            ("parameters", ", ".join(p.get("name", "?") for p in cfg.get("parameters") or [])),
            ("generator backend", gen.get("backend")),
            ("samples × jobs", ", ".join(
                f"{s} × {(v or {}).get('n_jobs') or gen.get('n_jobs')}"
                for s, v in (gen.get("samples") or {}).items())),
            ("tolerated failed generator jobs", gen.get("max_failed_fraction", 0.0)),
            ("Dask mode", (cfg.get("cluster") or {}).get("mode", "local")),
        ]  # fmt: skip
    try:
        store = ctx.combined_store()
        rows.append(("events in the combined store", store.n_events))
        parts = store.partitions or {}
        if parts:
            rows.append(("partitions", ", ".join(f"{k} {b - a}" for k, (a, b) in parts.items())))
        lost = store.attrs.get("lost_jobs")
        rows.append(
            ("lost generator jobs", f"{lost['n_lost']} of {lost['n_inputs']}" if lost else "none")
        )
    except SectionSkipped as why:
        rows.append(("combined store", f"missing ({why})"))
    rows.append(("results directory", ctx.display(ctx.results)))
    if ctx.benchmarks is not None:
        rows.append(("benchmark files", ctx.display(ctx.benchmarks)))
    out = H.table(rows, cls="kv")
    if cfg:
        out += H.details("the configuration of this run", H.json_block(dict(cfg)))
    return out
