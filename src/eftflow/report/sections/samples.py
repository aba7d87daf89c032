"""Sections "Cross sections", "Event selection" and "Lost generator jobs" (per-job event stores)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, report_section
from eftflow.report.sections._stores import job_stores, lost_jobs

__all__: list[str] = []


@report_section("Cross sections", order=20)
def cross_sections(ctx: ReportContext) -> str:
    jobs = job_stores(ctx)
    names = jobs[0]["store"].benchmark_names
    per_sample: dict[str, list] = defaultdict(list)
    events: dict[str, int] = defaultdict(int)
    for j in jobs:
        xs = ctx.cached(f"xs:{j['path']}", j["store"].cross_sections)
        per_sample[j["sample"]].append(xs)
        events[j["sample"]] += j["store"].n_events
    rows = []
    for sample, values in per_sample.items():
        arr = np.asarray(values)
        mean = arr.mean(axis=0)
        rows.append([sample, len(values), events[sample], *mean.tolist()])
    out = [
        H.table(
            rows,
            header=["sample", "jobs", "events", *[f"{b} [pb]" for b in names]],
            caption="Cross section per sample and benchmark: Σ event weights of each job's store, "
            "mean over the sample's jobs (after the analysis cuts where there is an analysis)",
        )
    ]
    if any(len(v) > 1 for v in per_sample.values()):
        spread = [
            [s, *np.asarray(v).std(axis=0, ddof=1).tolist()]
            for s, v in per_sample.items()
            if len(v) > 1
        ]
        out.append(
            H.details(
                "spread between jobs (standard deviation of the per-job sums)",
                H.table(spread, header=["sample", *[f"{b} [pb]" for b in names]]),
            )
        )
    per_job = [
        [j["sample"], j["job"], j["store"].n_events,
         *ctx.cached(f"xs:{j['path']}", j["store"].cross_sections).tolist()]
        for j in jobs
    ]  # fmt: skip
    out.append(
        H.details(
            "per job",
            H.table(per_job, header=["sample", "job", "events", *[f"{b} [pb]" for b in names]]),
        )
    )
    return "\n".join(out)


@report_section("Event selection", order=30)
def cutflow(ctx: ReportContext) -> str:
    jobs = job_stores(ctx)
    flows: dict[str, dict[str, int]] = {}
    for j in jobs:
        flow = j["store"].attrs.get("cutflow")
        if not flow:
            continue
        total = flows.setdefault(j["sample"], {})
        for cut, n in flow.items():
            total[cut] = total.get(cut, 0) + int(n)
    if not flows:
        counts = defaultdict(int)
        for j in jobs:
            counts[j["sample"]] += j["store"].n_events
        return H.note(
            "The event stores carry no cut flow (no analysis stage: e.g. the toy generator writes "
            "observables directly)."
        ) + H.table(list(counts.items()), header=["sample", "events"])
    out = []
    for sample, flow in flows.items():
        n_in = flow.get("input") or next(iter(flow.values()))
        rows, prev = [], n_in
        for cut, n in flow.items():
            rows.append([cut, n, n / prev if prev else 0.0, n / n_in if n_in else 0.0])
            prev = n
        out.append(
            H.table(
                rows,
                header=["step", "events", "efficiency (step)", "efficiency (cumulative)"],
                caption=f"{sample} (summed over its jobs)",
            )
        )
    return "\n".join(out)


@report_section("Lost generator jobs", order=25)
def lost(ctx: ReportContext) -> str:
    try:
        record = lost_jobs(ctx)
    except SectionSkipped:
        raise
    tolerance = (ctx.config.get("generation") or {}).get("max_failed_fraction")
    if not record:
        extra = f" (tolerated fraction: {H.num(tolerance)})" if tolerance is not None else ""
        return H.note(f"No generator job was lost{extra}.")
    out = [
        H.note(
            f"{record['n_lost']} of {record['n_inputs']} generator jobs failed for good "
            f"(fraction {H.num(record['fraction'])}, tolerated {H.num(record['tolerance'])}); "
            "they are left out of the combined store.",
            "warn",
        ),
        H.table(
            [[j.get("sample"), j.get("job"), j.get("failed_stage"), j.get("attempt"), j.get("reason")]
             for j in record["jobs"]],
            header=["sample", "job", "failed in", "attempt", "reason"],
        ),
    ]  # fmt: skip
    if record.get("k_factors"):
        out.append(
            H.table(
                sorted(record["k_factors"].items()),
                header=["sample", "k-factor of its surviving jobs"],
                caption="Weights of the other jobs of these samples were scaled by n_jobs/n_surviving",
            )
        )
    if record.get("samples_lost_entirely"):
        out.append(
            H.note(
                "Samples with no surviving job: " + ", ".join(record["samples_lost_entirely"]),
                "warn",
            )
        )
    return "\n".join(out)
