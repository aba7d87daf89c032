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
    return H.table(
        rows,
        header=["set", "method", "partition", "samples", "θ points", "distinct events",
                "events in partition", "min. effective sample size", "seed"],
        caption="Augmented samples (augment_samples): one zarr training set each",
    )  # fmt: skip
