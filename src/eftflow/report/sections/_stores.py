"""Shared reads of the per-job event stores (the inputs of combine_events) for report sections."""

from __future__ import annotations

from pathlib import Path

from eftflow.report.registry import ReportContext, SectionSkipped

__all__ = ["job_stores", "lost_jobs", "setup_file"]


def _discover(ctx: ReportContext) -> list[Path]:
    for stage in ("analyse_events", "generate_events"):
        found = sorted(ctx.path(stage).glob("*/*.zarr"))
        if found:
            return found
    return []


def job_stores(ctx: ReportContext) -> list[dict]:
    """One entry per combined job store: ``path``, ``sample``, ``job``, ``store`` (EventStore).

    The list is the combined store's ``input_files`` (else the analysed or generated stores found
    under the results); failure markers and unreadable stores are left out.
    """

    def load():
        from eftflow.errors import InputError
        from eftflow.store.events import EventStore

        try:
            paths = [ctx.resolve(p) for p in ctx.combined_store().attrs.get("input_files", [])]
        except SectionSkipped:
            paths = []
        paths = paths or _discover(ctx)
        out = []
        for p in paths:
            try:
                store = EventStore(p)
            except InputError:
                continue
            job = p.name.split(".")[0]
            out.append(
                {
                    "path": p,
                    "sample": p.parent.name,
                    "job": int(job) if job.isdigit() else job,
                    "store": store,
                }
            )
        if not out:
            raise SectionSkipped(
                "no per-job event stores found (combine_events/events.zarr's "
                "input_files, analyse_events/*/*.zarr, generate_events/*/*.zarr)"
            )
        return out

    return ctx.cached("job_stores", load)


def lost_jobs(ctx: ReportContext) -> dict | None:
    """The combined store's ``lost_jobs`` record, or ``None`` when no job was lost."""
    return ctx.combined_store().attrs.get("lost_jobs")


def setup_file(ctx: ReportContext) -> Path:
    """The setup file (``setup/setup.h5``), or :class:`SectionSkipped`."""
    return ctx.require(ctx.path("setup", "setup.h5"))[0]
