"""Section "Expected limits": results/compute_limits (JSON intervals and contour plots)."""

from __future__ import annotations

from eftflow.plotting import luminosity_text
from eftflow.report import html as H
from eftflow.report.registry import ReportContext, report_section

__all__ = ["interval_text", "cl_text"]

#: how an end that is the grid's edge (``intervals_open`` of limits.json) is marked
EDGE = "(grid edge)"


def cl_text(level) -> str:
    """A confidence level as recorded (``"0.68"``) as a percentage.

    >>> cl_text("0.68"), cl_text(0.9545), cl_text("x")
    ('68 %', '95.45 %', 'x')
    """
    try:
        return f"{100 * float(level):.4g} %"
    except (TypeError, ValueError):
        return str(level)


def interval_text(low: float, high: float, open_low: bool = False, open_high: bool = False) -> str:
    """One interval as text; an end at the grid's edge is written ``≤ low`` / ``≥ high``.

    >>> interval_text(-0.5, 0.5)
    '[-0.5, 0.5]'
    >>> interval_text(-0.001, 0.002, open_low=True)
    '[≤ -0.001 (grid edge), 0.002]'
    """
    lo = f"≤ {H.num(low)} {EDGE}" if open_low else H.num(low)
    hi = f"≥ {H.num(high)} {EDGE}" if open_high else H.num(high)
    return f"[{lo}, {hi}]"


@report_section("Expected limits", order=65)
def limits(ctx: ReportContext) -> str:
    base = ctx.path("compute_limits")
    data = ctx.json(base / "limits.json")
    out = [
        H.note("Expected (Asimov) intervals as compute_limits recorded them; −2Δln L on θ grids.")
    ]
    inputs = []
    fisher = data.get("fisher") or {}
    if fisher.get("luminosity") is not None:
        inputs.append(f"Fisher information at L = {luminosity_text(fisher['luminosity'])}")
    hist = data.get("histogram") or {}
    if hist.get("luminosity") is not None:
        inputs.append(
            f"histogram of {hist.get('observable', '?')} ({hist.get('partition', '?')} events) at "
            f"L = {luminosity_text(hist['luminosity'])}, nuisance mode "
            f"{hist.get('nuisance_mode', '?')}"
        )
    if inputs:
        out.append(H.note("Likelihoods: " + "; ".join(inputs) + "."))
    rows, at_edge = [], []
    for grid in data.get("grids") or []:
        if len(grid.get("parameters") or []) != 1:
            continue
        name = grid["parameters"][0]
        for source, like in (grid.get("likelihoods") or {}).items():
            opens = like.get("intervals_open") or {}  # absent in files of older versions
            for level, intervals in (like.get("intervals") or {}).items():
                flags = opens.get(level) or [[False, False]] * len(intervals)
                text = ", ".join(
                    interval_text(a, b, bool(lo), bool(hi))
                    for (a, b), (lo, hi) in zip(intervals, flags, strict=False)
                )
                if any(lo or hi for lo, hi in flags):
                    at_edge.append(f"{name} ({source}, CL {cl_text(level)})")
                threshold = (like.get("levels") or {}).get(level, "—")
                rows.append([name, source, cl_text(level), threshold, text or "—"])
    if rows:
        out.append(H.table(rows, header=["parameter", "likelihood", "CL", "−2Δln L ≤", "interval(s)"],
                           caption="One-parameter intervals (other parameters at the reference)"))  # fmt: skip
    if at_edge:
        out.append(
            H.note(
                f"Some intervals reach the edge of their θ grid: {', '.join(at_edge)}. An end "
                f"marked {EDGE} is where the grid stops, not a limit (the parameter is not "
                "constrained that far within the grid); widen the grid (config limits.grids "
                "ranges, or the parameter's parameter_range) to find the limit.",
                "warn",
            )
        )
    plots = sorted(base.glob("**/*.png"))
    for p in plots:
        out.append(H.image(p, p.stem.replace("_", " ")))
    return "\n".join(out)
