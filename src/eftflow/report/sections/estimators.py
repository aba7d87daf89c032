"""Section "Neural estimators": results/evaluate_estimator (detector- vs truth-level information)."""

from __future__ import annotations

from eftflow.plotting import luminosity_text
from eftflow.report import html as H
from eftflow.report.registry import ReportContext, report_section

__all__: list[str] = []


def _diagonal(entry: dict) -> dict:
    names = entry.get("parameter_names") or []
    info = entry.get("information") or []
    return {n: info[i][i] for i, n in enumerate(names) if i < len(info)}


@report_section("Neural estimators", order=70)
def estimators(ctx: ReportContext) -> str:
    base = ctx.path("evaluate_estimator")
    data = ctx.json(base / "evaluation.json")
    out = [H.note("Evaluation of the trained ensemble as evaluate_estimator recorded it.")]
    first = next((data[k] for k in ("truth", "detector") if isinstance(data.get(k), dict)), {})
    facts = []
    theta = first.get("theta", data.get("theta"))
    if theta is not None:
        facts.append(f"θ = {theta}")
    if first.get("luminosity") is not None:
        facts.append(f"L = {luminosity_text(first['luminosity'])}")
    n_events = (first.get("extra") or {}).get("n_events")
    if n_events is not None:
        facts.append(f"from {n_events} events")
    head = (
        f"Ensemble: {data['method']}, {data.get('n_members', '?')} member(s). "
        if data.get("method")
        else ""
    )
    if head or facts:
        out.append(H.note(head + ("Information at " + ", ".join(facts) + "." if facts else "")))
    kinds = [
        k
        for k in ("truth", "rate", "detector", "detector_plus_rate")
        if isinstance(data.get(k), dict)
    ]
    if kinds:
        diags = {k: _diagonal(data[k]) for k in kinds}
        names = list(diags[kinds[0]])
        rows = [[n, *(diags[k].get(n) for k in kinds)] for n in names]
        out.append(H.table(rows, header=["parameter", *(f"I_ii ({k})" for k in kinds)],
                           caption="Fisher information: truth level vs the neural (detector-level) estimate"))  # fmt: skip
    if data.get("ratio_to_truth") is not None:
        ratio = list(data["ratio_to_truth"])
        pnames = list(first.get("parameter_names") or [])
        pnames += [f"θ{i}" for i in range(len(pnames), len(ratio))]
        out.append(
            H.note(
                "(detector + rate) / truth, I_ii per parameter: "
                + ", ".join(f"{n} {H.num(v)}" for n, v in zip(pnames, ratio))
            )
        )
    for p in sorted(base.glob("**/*.png")):
        out.append(H.image(p, p.stem.replace("_", " ")))
    return "\n".join(out)
