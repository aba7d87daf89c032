"""The HTML report of a run: key numbers, plots and provenance, read from the results.

Sections are registered functions (:func:`report_section`), so every stage adds its own section
by registering it — in a module of :mod:`eftflow.report.sections` (found automatically) or in a
module passed to :func:`build_report` — without editing the others. Sections read results only;
a section whose inputs are missing is skipped with a note. See docs/orchestration.md ("The
report").

>>> from eftflow.report import ReportContext, report_section, html
>>> @report_section("My stage", order=70, key="my-stage-doc")
... def my_stage(ctx: ReportContext) -> str:
...     data = ctx.json(ctx.path("my_stage", "summary.json"))   # skipped if missing
...     return html.table([[k, v] for k, v in data.items()], header=["key", "value"])
>>> from eftflow.report.registry import unregister; unregister("my-stage-doc")
"""

from eftflow.report import html
from eftflow.report.build import build_report, load_section_modules
from eftflow.report.registry import (
    ReportContext,
    ReportSection,
    SectionSkipped,
    registered_sections,
    report_section,
)

__all__ = [
    "build_report",
    "load_section_modules",
    "report_section",
    "registered_sections",
    "ReportContext",
    "ReportSection",
    "SectionSkipped",
    "html",
]
