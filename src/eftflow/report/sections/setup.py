"""Section "Setup and morphing basis": parameters, benchmarks, the morphing basis plot."""

from __future__ import annotations

import json

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, report_section
from eftflow.report.sections._stores import setup_file

__all__: list[str] = []


@report_section("Setup and morphing basis", order=15)
def setup_section(ctx: ReportContext) -> str:
    import h5py

    from eftflow.setup import EFTSetup

    path = setup_file(ctx)
    setup = EFTSetup.from_file(path)
    data = setup.to_dict()
    names = setup.parameter_names
    out = [
        H.table(
            [
                [
                    p["name"],
                    p["lha_block"],
                    p["lha_id"],
                    p["morphing_max_power"],
                    f"[{H.num(p['parameter_range'][0])}, {H.num(p['parameter_range'][1])}]",
                ]
                for p in data["parameters"]
            ],
            header=["parameter", "LHA block", "LHA id", "max power", "range"],
            caption="Parameters",
        ),  # fmt: skip
        H.table(
            [
                [
                    b["name"],
                    *[float(v) for v in b["values"]],
                    "nuisance" if b["is_nuisance"] else "physics",
                ]
                for b in data["benchmarks"]
            ],
            header=["benchmark", *names, "kind"],
            caption="Benchmarks (named ones first, then the added morphing basis points)",
        ),  # fmt: skip
    ]
    if data.get("systematics"):
        out.append(
            H.table(
                [[s.get("name"), s.get("type"), json.dumps(s, default=str)] for s in data["systematics"]],
                header=["systematic", "type", "definition"],
                caption="Systematics",
            )
        )  # fmt: skip
    crit = getattr(setup, "morphing_criterion", None)
    if crit is not None:
        out.append(H.note(f"Morphing criterion of the chosen basis: {H.num(crit)}."))
    plot = ctx.path("setup", "morphing_basis.png")
    if plot.is_file():
        out.append(H.image(plot, "Morphing basis: benchmark points and the expected size of the "
                                 "morphing weights over the parameter ranges"))  # fmt: skip
    else:
        out.append(H.note(f"No morphing basis plot ({ctx.display(plot)} is missing).", "skip"))
    with h5py.File(path, "r") as f:
        prov = f.attrs.get("provenance")
    if prov is not None:
        out.append(H.details("provenance of setup.h5", H.json_block(json.loads(prov))))
    return "\n".join(out)
