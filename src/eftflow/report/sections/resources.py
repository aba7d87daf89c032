"""Section "Time and memory per rule": the rules' ``benchmark:`` TSV files."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, report_section

__all__ = ["read_benchmarks", "other_run_dirs", "sampled"]

#: benchmark files every run writes (single-job rules: ``<rule>/<rule>.tsv``); one of them inside
#: a sub-directory marks that directory as another run's (``benchmarks/runs/<run_name>/``)
RUN_MARKERS = (
    "setup/setup.tsv",
    "combine_events/combine_events.tsv",
    "make_report/make_report.tsv",
)


def other_run_dirs(directory: str | Path) -> list[str]:
    """The sub-directories of ``directory`` that hold another run's benchmark files.

    The benchmarks of an unnamed run are ``benchmarks/runs/<rule>/...`` and those of a run named
    ``NAME`` are ``benchmarks/runs/NAME/<rule>/...``: inside the unnamed run's directory, a
    directory holding a rule's own ``<rule>/<rule>.tsv`` (:data:`RUN_MARKERS`) is a named run's.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        d.name
        for d in directory.iterdir()
        if d.is_dir() and any((d / marker).is_file() for marker in RUN_MARKERS)
    )


def read_benchmarks(directory: str | Path, *, exclude: Iterable[str] | None = None) -> list[dict]:
    """Every ``*.tsv`` under ``directory``: ``rule`` (first path part), ``job`` (the rest), and
    Snakemake's columns ``s``, ``max_rss`` (MB), ``cpu_time`` (s), ... as floats (last row).

    Files under the first-level directories named in ``exclude`` are left out; by default
    (``None``) those of other runs (:func:`other_run_dirs`), so that the report of an unnamed run
    counts its own jobs only.
    """
    directory = Path(directory)
    skip = set(other_run_dirs(directory) if exclude is None else exclude)
    rows = []
    for path in sorted(directory.rglob("*.tsv")):
        rel = path.relative_to(directory).with_suffix("")
        if len(rel.parts) > 1 and rel.parts[0] in skip:
            continue
        try:
            records = list(csv.DictReader(io.StringIO(path.read_text()), delimiter="\t"))
        except (OSError, csv.Error):
            continue
        if not records:
            continue
        row: dict = {"rule": rel.parts[0], "job": "/".join(rel.parts[1:]) or rel.parts[0]}
        for k, v in records[-1].items():
            try:
                row[k] = float(v)
            except (TypeError, ValueError):
                row[k] = v
        rows.append(row)
    return rows


def sampled(row: dict) -> bool:
    """Whether Snakemake's benchmark sampler caught the job at all: it samples CPU time and
    memory every ~1 s, so a job that ends sooner shows CPU 0 s and the few MB of its shell."""
    cpu, rss = row.get("cpu_time"), row.get("max_rss")
    return (isinstance(cpu, float) and cpu > 0) or (isinstance(rss, float) and rss >= 20.0)


def _bar_chart(per_rule: dict[str, dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = list(per_rule)
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(rules) + 1.2), sharey=True)
    y = range(len(rules))
    axes[0].barh(y, [per_rule[r]["total_s"] for r in rules], color="#3b75af", label="sum of jobs")
    axes[0].barh(y, [per_rule[r]["max_s"] for r in rules], color="#9cc3e4", label="longest job")
    axes[0].set_xlabel("wall time [s]")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[1].barh(y, [per_rule[r]["max_rss"] for r in rules], color="#c0504d")
    axes[1].set_xlabel("peak memory of a job (max RSS) [MB]")
    axes[0].set_yticks(list(y), rules)
    axes[0].invert_yaxis()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


@report_section("Time and memory per rule", order=80)
def resources(ctx: ReportContext) -> str:
    if ctx.benchmarks is None:
        raise SectionSkipped("no benchmark directory was given (--benchmarks)")
    ctx.require(ctx.benchmarks)
    others = other_run_dirs(ctx.benchmarks)
    rows = read_benchmarks(ctx.benchmarks, exclude=others)
    if not rows:
        raise SectionSkipped(f"no benchmark TSV files under {ctx.display(ctx.benchmarks)}")
    per_rule: dict[str, dict] = defaultdict(
        lambda: {"jobs": 0, "total_s": 0.0, "max_s": 0.0, "cpu_s": 0.0, "max_rss": 0.0,
                 "sampled": 0}
    )  # fmt: skip
    for r in rows:
        agg = per_rule[r["rule"]]
        s = float(r.get("s") or 0.0)
        agg["jobs"] += 1
        agg["total_s"] += s
        agg["max_s"] = max(agg["max_s"], s)
        if not sampled(r):
            continue
        agg["sampled"] += 1
        agg["cpu_s"] += (
            float(r.get("cpu_time") or 0.0) if isinstance(r.get("cpu_time"), float) else 0.0
        )
        rss = r.get("max_rss")
        agg["max_rss"] = max(agg["max_rss"], rss if isinstance(rss, float) else 0.0)
    order = sorted(per_rule, key=lambda k: -per_rule[k]["total_s"])
    per_rule = {k: per_rule[k] for k in order}
    total = sum(a["total_s"] for a in per_rule.values())
    table = H.table(
        [[rule, a["jobs"], a["total_s"], a["max_s"],
          a["cpu_s"] if a["sampled"] else "–", a["max_rss"] if a["sampled"] else "–",
          f"{100 * a['total_s'] / total:.1f} %" if total else ""]
         for rule, a in per_rule.items()]
        + [["all rules", sum(a["jobs"] for a in per_rule.values()), total, "", "", "", ""]],
        header=["rule", "jobs", "wall time, sum [s]", "longest job [s]", "CPU time [s]",
                "max RSS [MB]", "share"],
        caption="From the rules' benchmark files (Snakemake `benchmark:`; the sum over jobs is "
        "not the elapsed time when jobs ran in parallel). CPU time and memory are sampled about "
        "once a second: – marks rules whose jobs all ended before the first sample, and jobs "
        "not sampled are left out of the sums",
    )  # fmt: skip
    out = [table, H.figure_png(_bar_chart(per_rule), "Wall time and peak memory per rule")]
    if others:
        out.insert(0, H.note(f"Left out: the benchmark files of the runs {', '.join(others)} "
                             f"(sub-directories of {ctx.display(ctx.benchmarks)})."))  # fmt: skip
    out.append(
        H.details(
            f"all {len(rows)} jobs",
            H.table(
                [[r["rule"], r["job"], r.get("s")]
                 + ([r.get("cpu_time"), r.get("max_rss"), r.get("max_vms")] if sampled(r)
                    else ["–", "–", "–"]) for r in rows],
                header=["rule", "job", "wall [s]", "CPU [s]", "max RSS [MB]", "max VMS [MB]"],
            ),
        )
    )  # fmt: skip
    return "\n".join(out)
