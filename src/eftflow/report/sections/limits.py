"""Section "Expected limits": results/compute_limits (JSON intervals and contour plots)."""

from __future__ import annotations

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, report_section

__all__: list[str] = []


@report_section("Expected limits", order=65)
def limits(ctx: ReportContext) -> str:
    base = ctx.path("compute_limits")
    data = ctx.json(base / "limits.json")
    out = [
        H.note("Expected (Asimov) intervals as compute_limits recorded them; −2Δln L on θ grids.")
    ]
    rows = []
    for grid in data.get("grids") or []:
        if len(grid.get("parameters") or []) != 1:
            continue
        for source, like in (grid.get("likelihoods") or {}).items():
            for level, intervals in (like.get("intervals") or {}).items():
                text = ", ".join(f"[{H.num(a)}, {H.num(b)}]" for a, b in intervals) or "—"
                rows.append([grid["parameters"][0], source, level, text])
    if rows:
        out.append(H.table(rows, header=["parameter", "likelihood", "CL", "interval(s)"],
                           caption="One-parameter intervals (other parameters at the reference)"))  # fmt: skip
    plots = sorted(base.glob("**/*.png"))
    for p in plots:
        out.append(H.image(p, p.stem.replace("_", " ")))
    return "\n".join(out)
