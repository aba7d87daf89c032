"""The section registry of the report: ``@report_section(name, order)`` and the context it gets.

A section is a plain function ``fn(ctx: ReportContext) -> str`` returning an HTML fragment (use
the helpers of :mod:`eftflow.report.html`). It reads results only — files written by the stages —
and never computes new physics. When an input it needs is missing it calls ``ctx.require(path)``
(or raises :class:`SectionSkipped`): the report then shows the section's title with a note
saying what was missing, and goes on with the other sections.

Later stages add their sections by registering them, not by editing the report: a module in
:mod:`eftflow.report.sections` (discovered automatically), or any module imported before
:func:`eftflow.report.build_report` runs (``build_report(..., modules=["mypkg.report"])``).

Example
-------
>>> from eftflow.report.registry import report_section, registered_sections
>>> @report_section("Example", order=999, key="example-doc")
... def _example(ctx):
...     return "<p>hello</p>"
>>> [s.key for s in registered_sections() if s.key == "example-doc"]
['example-doc']
>>> unregister("example-doc")
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ReportContext",
    "ReportSection",
    "SectionSkipped",
    "report_section",
    "registered_sections",
    "unregister",
]


class SectionSkipped(Exception):
    """Raised by a section whose inputs are missing; the message becomes the report's note."""


@dataclass(frozen=True)
class ReportSection:
    """A registered section: title, position (ascending ``order``), anchor ``key``, function."""

    name: str
    order: float
    key: str
    function: Callable[[ReportContext], str]


_REGISTRY: dict[str, ReportSection] = {}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "section"


def report_section(
    name: str, order: float = 100.0, *, key: str | None = None
) -> Callable[[Callable], Callable]:
    """Register ``fn(ctx) -> html`` as a report section titled ``name``, placed by ``order``.

    Registering a second section with the same ``key`` (default: the slug of ``name``) replaces
    the first, so a stage can override a built-in section.
    """

    def decorate(fn: Callable[[ReportContext], str]) -> Callable[[ReportContext], str]:
        k = key or _slug(name)
        _REGISTRY[k] = ReportSection(name, float(order), k, fn)
        return fn

    return decorate


def registered_sections() -> list[ReportSection]:
    """The registered sections in report order (``order``, then title)."""
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def unregister(key: str) -> None:
    """Remove the section ``key`` (tests, or a stage replacing a section)."""
    _REGISTRY.pop(key, None)


@dataclass
class ReportContext:
    """What every section receives.

    Attributes
    ----------
    results
        The run's results directory (``results/`` or ``results/<run_name>/``).
    benchmarks
        The directory of the rules' ``benchmark:`` TSV files (``benchmarks/runs[/<run_name>]``),
        or ``None``.
    config
        The run's configuration (a mapping; empty when not given).
    output
        The HTML file being written (images may be written next to it).
    workdir
        The directory relative paths recorded in the stores are resolved against (the workflow
        directory; default: the current directory).
    """

    results: Path
    benchmarks: Path | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    output: Path | None = None
    workdir: Path = field(default_factory=Path.cwd)
    _cache: dict = field(default_factory=dict, repr=False)

    def path(self, *parts: str | os.PathLike) -> Path:
        """A path inside the results directory."""
        return Path(self.results, *parts)

    def require(self, *paths: str | os.PathLike) -> list[Path]:
        """The paths, or :class:`SectionSkipped` naming the first one that does not exist."""
        out = [Path(p) for p in paths]
        for p in out:
            if not p.exists():
                raise SectionSkipped(f"{self.display(p)} does not exist")
        return out

    def resolve(self, recorded: str | os.PathLike) -> Path:
        """A path recorded in a store (relative to the workflow directory) as a usable path."""
        p = Path(recorded)
        return p if p.is_absolute() else self.workdir / p

    def display(self, path: str | os.PathLike) -> str:
        """``path`` relative to the workflow directory when it is inside it."""
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.workdir.resolve()))
        except ValueError:
            return str(p)

    def json(self, path: str | os.PathLike) -> Any:
        """Read a JSON file once (cached); :class:`SectionSkipped` when missing or unreadable."""
        p = Path(path)
        key = ("json", str(p))
        if key not in self._cache:
            self.require(p)
            try:
                self._cache[key] = json.loads(p.read_text())
            except (OSError, ValueError) as err:
                raise SectionSkipped(f"{self.display(p)} is not readable JSON ({err})") from None
        return self._cache[key]

    def combined_store(self):
        """The combined event store (``combine_events/events.zarr``), opened once."""
        key = ("combined",)
        if key not in self._cache:
            from eftflow.errors import InputError
            from eftflow.store.events import EventStore

            (p,) = self.require(self.path("combine_events", "events.zarr"))
            try:
                self._cache[key] = EventStore(p)
            except InputError as err:
                raise SectionSkipped(str(err)) from None
        return self._cache[key]

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed once per report (sections share expensive reads this way)."""
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]
