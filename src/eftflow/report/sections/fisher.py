"""Section "Fisher information": results/compute_fisher_information (JSON and its plots).

The summary shows each analysis's full matrix (physics and nuisance parameters, as recorded) and,
where the file has one, the matrix with the nuisance parameters profiled (``profiled``): that is
the one the figures draw and the limits use, so both are shown, each labelled.
"""

from __future__ import annotations

from eftflow.plotting import luminosity_text
from eftflow.plotting.fisher import EIGEN_FLOOR
from eftflow.report import html as H
from eftflow.report.registry import ReportContext, report_section

__all__ = ["summary_row"]


def summary_row(name: str, kind, names: list, info: list, eigenvalues, determinant) -> list:
    """One row of the summary table: name, kind, det I, diagonal and eigenvalues (≈ 0 below
    :data:`~eftflow.plotting.fisher.EIGEN_FLOOR` of the largest eigenvalue)."""
    eig = [float(v) for v in eigenvalues or []]
    zero = EIGEN_FLOOR * max((abs(v) for v in eig), default=0.0)
    det = determinant
    if eig and min(abs(v) for v in eig) <= zero:
        det = "≈ 0"  # a direction without information: rounding noise of either sign
    return [
        name,
        kind,
        det,
        ", ".join(f"{n}: {H.num(info[i][i])}" for i, n in enumerate(names) if i < len(info)),
        ", ".join("≈ 0" if abs(v) <= zero else H.num(v) for v in eig),
    ]


def _profiled(a: dict) -> tuple[list, list] | None:
    """(names, matrix) of the nuisance-profiled information of an analysis, if recorded."""
    import numpy as np

    prof = a.get("profiled")
    if not isinstance(prof, dict) or not prof.get("information"):
        return None
    info = np.asarray(prof["information"], float)
    names = list(a.get("parameter_names") or [])[: info.shape[0]]
    return names, info.tolist()


@report_section("Fisher information", order=60)
def fisher(ctx: ReportContext) -> str:
    import numpy as np

    base = ctx.path("compute_fisher_information")
    data = ctx.json(base / "fisher_information.json")
    analyses = data.get("analyses") or {}
    lum = data.get("luminosity")
    out = [
        H.note(
            f"Luminosity {luminosity_text(lum) if lum is not None else 'not recorded'} at "
            f"θ = {data.get('theta')}"
            + (f", events of partition {data['partition']!r}" if data.get("partition") else "")
            + "; the numbers as compute_fisher_information recorded them."
        )
    ]
    summary, profiled = [], []
    for name, a in analyses.items():
        info = a.get("information") or []
        names = a.get("parameter_names") or []
        summary.append(
            summary_row(
                name, a.get("kind"), names, info, a.get("eigenvalues"), a.get("determinant")
            )
        )
        prof = _profiled(a)
        if prof is not None:
            pnames, pinfo = prof
            m = np.asarray(pinfo, float)
            m = 0.5 * (m + m.T)
            profiled.append(
                summary_row(name, a.get("kind"), pnames, pinfo, np.linalg.eigvalsh(m).tolist(),
                            float(np.linalg.det(m)))
            )  # fmt: skip
    out.append(
        H.table(
            summary,
            header=["analysis", "kind", "det I", "diagonal I_ii", "eigenvalues"],
            caption="Summary of the information matrices over all their parameters, nuisance "
            "parameters included (≈ 0: below 10⁻¹⁰ of the largest eigenvalue, a direction "
            "without information up to rounding)",
        )
    )
    if profiled:
        out.append(
            H.table(
                profiled,
                header=["analysis", "kind", "det I", "diagonal I_ii", "eigenvalues"],
                caption="The same with the nuisance parameters profiled (their constraints "
                "added): the matrices the figures below draw",
            )
        )
    for name, a in analyses.items():
        names = a.get("parameter_names") or []
        info = a.get("information") or []
        extra = a.get("extra") or {}
        rows = [[n, *row] for n, row in zip(names, info)]
        body = H.table(rows, header=["", *names], caption=f"{name}: information matrix I")
        prof = _profiled(a)
        if prof is not None:
            pnames, pinfo = prof
            body += H.table(
                [[n, *row] for n, row in zip(pnames, pinfo)],
                header=["", *pnames],
                caption=f"{name}: nuisance parameters profiled",
            )
        if extra:
            body += H.table(sorted(extra.items()), header=["", ""], cls="kv")
        out.append(H.details(f"{name} ({a.get('kind')}): matrix and details", body))
    plots = sorted((base / "plots").glob("*.png")) if (base / "plots").is_dir() else []
    for p in plots:
        out.append(H.image(p, p.stem.replace("_", " ")))
    return "\n".join(out)
