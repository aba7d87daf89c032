"""Section "Fisher information": results/compute_fisher_information (JSON and its plots)."""

from __future__ import annotations

from eftflow.plotting.fisher import EIGEN_FLOOR
from eftflow.report import html as H
from eftflow.report.registry import ReportContext, report_section

__all__: list[str] = []


@report_section("Fisher information", order=60)
def fisher(ctx: ReportContext) -> str:
    base = ctx.path("compute_fisher_information")
    data = ctx.json(base / "fisher_information.json")
    analyses = data.get("analyses") or {}
    out = [
        H.note(
            f"Luminosity {H.num(data.get('luminosity'))} pb⁻¹ at θ = {data.get('theta')}; the "
            "numbers as compute_fisher_information recorded them."
        )
    ]
    summary = []
    for name, a in analyses.items():
        info = a.get("information") or []
        names = a.get("parameter_names") or []
        eig = [float(v) for v in a.get("eigenvalues") or []]
        zero = EIGEN_FLOOR * max((abs(v) for v in eig), default=0.0)
        det = a.get("determinant")
        if eig and min(abs(v) for v in eig) <= zero:
            det = "≈ 0"  # a direction without information: rounding noise of either sign
        summary.append(
            [name, a.get("kind"), det,
             ", ".join(f"{n}: {H.num(info[i][i])}" for i, n in enumerate(names)),
             ", ".join("≈ 0" if abs(v) <= zero else H.num(v) for v in eig)]
        )  # fmt: skip
    out.append(
        H.table(
            summary,
            header=["analysis", "kind", "det I", "diagonal I_ii", "eigenvalues"],
            caption="Summary of the information matrices (≈ 0: below 10⁻¹⁰ of the largest "
            "eigenvalue, a direction without information up to rounding)",
        )
    )
    for name, a in analyses.items():
        names = a.get("parameter_names") or []
        info = a.get("information") or []
        extra = a.get("extra") or {}
        rows = [[n, *row] for n, row in zip(names, info)]
        body = H.table(rows, header=["", *names], caption=f"{name}: information matrix I")
        if extra:
            body += H.table(sorted(extra.items()), header=["", ""], cls="kv")
        out.append(H.details(f"{name} ({a.get('kind')}): matrix and details", body))
    plots = sorted((base / "plots").glob("*.png")) if (base / "plots").is_dir() else []
    for p in plots:
        out.append(H.image(p, p.stem.replace("_", " ")))
    return "\n".join(out)
