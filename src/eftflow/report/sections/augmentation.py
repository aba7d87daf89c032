"""Section "Training samples": results/augment_samples/summary.json."""

from __future__ import annotations

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, report_section

__all__: list[str] = []


@report_section("Training samples", order=50)
def augmentation(ctx: ReportContext) -> str:
    summary = ctx.json(ctx.path("augment_samples", "summary.json"))
    rows = [
        [name, s.get("method"), s.get("partition"), s.get("n_samples"), s.get("n_sampling_points"),
         s.get("n_distinct_events"), s.get("n_events_partition"), s.get("ess_min"), s.get("seed")]
        for name, s in summary.items()
    ]  # fmt: skip
    out = [
        H.table(
            rows,
            header=["set", "method", "partition", "samples", "θ points", "distinct events",
                    "events in partition", "min. effective sample size", "seed"],
            caption="Augmented samples (augment_samples): one zarr training set each",
        )
    ]  # fmt: skip
    extra = _balance_rows(ctx, summary)
    if extra:
        out.append(
            H.table(
                extra,
                header=["set", "balanced observable", "bins", "share at the reference",
                        "balanced share", "draws per effective event", "held-out rows"],
                caption="Balanced sets (drawn ∝ w·c(x); the estimators trained on them correct "
                "for it exactly) and events held out for validation (docs/augmentation.md)",
            )
        )  # fmt: skip
    return "\n".join(out)


def _balance_rows(ctx: ReportContext, summary: dict) -> list[list]:
    """One row per set drawn with ``balance`` or ``validation_events`` (from its zarr.json)."""
    rows = []
    for name in summary:
        path = ctx.path("augment_samples", f"{name}.zarr", "zarr.json")
        if not path.is_file():
            continue
        attrs = (ctx.json(path) or {}).get("attributes") or {}
        bal, held = attrs.get("balance"), attrs.get("held_out")
        if not isinstance(bal, dict) and not isinstance(held, dict):
            continue
        fmt = lambda v: ", ".join(f"{x:.3g}" for x in v or []) or "—"  # noqa: E731
        held_rows = "—"
        if isinstance(held, dict) and held.get("rows"):
            a, b = held["rows"]
            held_rows = f"{b - a} of {b} ({held.get('fraction', 0):.0%} of the events)"
        bal = bal if isinstance(bal, dict) else {}
        edges = bal.get("edges")
        rows.append([
            name, bal.get("observable") or "—", f"edges at {fmt(edges)}" if edges else "—",
            fmt(bal.get("share_unbalanced")), fmt(bal.get("share_balanced")),
            fmt(bal.get("expected_repeats")), held_rows,
        ])  # fmt: skip
    return rows
