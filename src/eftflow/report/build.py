"""Build the HTML report: run every registered section, write one self-contained file atomically.

>>> # build_report("results", "results/report/report.html", benchmarks="benchmarks/runs")
"""

from __future__ import annotations

import datetime as _dt
import importlib
import logging
import os
import pkgutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, registered_sections

__all__ = ["build_report", "load_section_modules"]

log = logging.getLogger(__name__)


def load_section_modules(extra: Iterable[str] = ()) -> list[str]:
    """Import every module of :mod:`eftflow.report.sections` (not ``_private`` ones) and ``extra``.

    Importing a module registers its sections. Returns the module names imported.
    """
    from eftflow.report import sections

    names = [
        f"{sections.__name__}.{m.name}"
        for m in pkgutil.iter_modules(sections.__path__)
        if not m.name.startswith("_")
    ]
    extra = list(extra)
    names += extra
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            if name not in extra:
                raise
            from eftflow.errors import ConfigError

            raise ConfigError(
                f"cannot import the report section module {name!r}: {err}", field="--module"
            ) from None
    return names


def build_report(
    results: str | os.PathLike,
    output: str | os.PathLike,
    *,
    benchmarks: str | os.PathLike | None = None,
    config: Mapping[str, Any] | None = None,
    workdir: str | os.PathLike | None = None,
    modules: Iterable[str] = (),
    title: str | None = None,
) -> dict:
    """Write the report of the run in ``results`` to ``output`` (HTML, atomically).

    Parameters
    ----------
    results
        The run's results directory.
    output
        The HTML file to write.
    benchmarks
        Directory of the rules' benchmark TSV files (``None``: the time/memory section is skipped).
    config
        The run's configuration (shown, and used for the run name).
    workdir
        Directory that relative paths recorded in stores are resolved against (default: cwd).
    modules
        Extra modules to import first (they register more sections).
    title
        The page title (default: ``eftflow report`` plus the run name).

    Returns
    -------
    dict
        ``sections`` (titles written), ``skipped`` (title → reason), ``failed`` (title → error),
        ``seconds``.
    """
    from eftflow.errors import InputError
    from eftflow.store.atomic import atomic_path

    t0 = time.perf_counter()
    results = Path(results)
    if not results.is_dir():
        what = "is a file, not" if results.exists() else "does not exist: expected"
        raise InputError(f"{what} the results directory of a run", file=str(results))
    load_section_modules(modules)
    ctx = ReportContext(
        results=results,
        benchmarks=Path(benchmarks) if benchmarks is not None else None,
        config=dict(config or {}),
        output=Path(output),
        workdir=Path(workdir) if workdir is not None else Path.cwd(),
    )
    parts, skipped, failed = [], {}, {}
    for section in registered_sections():
        try:
            body = section.function(ctx)
        except SectionSkipped as why:
            skipped[section.name] = str(why)
            body = H.note(f"Skipped: {why}.", "skip")
        except Exception as err:  # one broken section must not cost the whole report
            log.warning("report section %r failed: %s: %s", section.name, type(err).__name__, err)
            failed[section.name] = f"{type(err).__name__}: {err}"
            body = H.note(f"This section could not be built ({type(err).__name__}: {err}).", "warn")
        parts.append((section.key, section.name, body))
    run_name = ctx.config.get("run_name") or ""
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    from eftflow import __version__
    from eftflow.store.events import make_provenance

    provenance = make_provenance(stage="make_report", results=str(results))
    where = f" · SLURM job {provenance['slurm_job_id']}" if "slurm_job_id" in provenance else ""
    document = H.page(
        title or ("eftflow report" + (f" — {run_name}" if run_name else "")),
        f"results: {ctx.display(results)} · generated {now}",
        parts,
        f"eftflow {__version__} · {len(parts) - len(skipped)} of {len(parts)} sections built"
        + where,
        provenance=provenance,
    )
    with atomic_path(output) as tmp:
        tmp.write_text(document, encoding="utf-8")
    seconds = time.perf_counter() - t0
    log.info(
        "wrote %s: %d sections (%d skipped, %d failed), %.1f kB, %.1f s",
        output,
        len(parts),
        len(skipped),
        len(failed),
        len(document) / 1024,
        seconds,
    )
    return {
        "sections": [t for _, t, _ in parts],
        "skipped": skipped,
        "failed": failed,
        "seconds": seconds,
    }
