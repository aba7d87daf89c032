"""Section "Observable distributions" (rule ``plot_distributions``)."""

from __future__ import annotations

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, report_section

__all__: list[str] = []


@report_section("Observable distributions", order=35)
def distributions(ctx: ReportContext) -> str:
    plot = ctx.path("plot_distributions", "distributions.png")
    if not plot.is_file():
        raise SectionSkipped(f"{ctx.display(plot)} is missing (rule plot_distributions)")
    names = []
    try:
        store = ctx.combined_store()
        names = list(store.nuisance_benchmark_names or [])
    except SectionSkipped:
        pass
    band = (
        "; bands and thin lines: toys over the nuisance parameters (16–84 %), from the "
        f"nuisance weights of {', '.join(names)}"
        if names
        else "; the store has no nuisance weights, so no bands"
    )
    return H.image(
        plot,
        "The combined events at the declared benchmarks: σ per bin, weights morphed to each "
        "benchmark" + band,
    )
