"""Progress of long steps: a bar on a terminal, log lines in batch jobs.

:func:`progress` returns a :class:`Progress` that a loop updates with the work it has done. Where
stderr is a terminal it draws a tqdm bar (count, rate, time left). Elsewhere (a SLURM job, a
Snakemake log, a pipe) a bar would only fill the log with carriage returns, so it writes an INFO
line to the caller's logger at most every ``every`` seconds, and one at the end::

    shower_events: 120 000/500 000 events (24 %), 2 870 events/s, about 2 min 12 s left

The environment variable ``EFTFLOW_PROGRESS`` chooses for every step: ``bar``, ``log`` or
``off`` (default: ``bar`` on a terminal, else ``log``).

>>> import logging
>>> with progress(3, "demo", unit="chunks", logger=logging.getLogger("demo")) as p:
...     for _ in range(3):
...         p.update(1)
>>> p.n
3
"""

from __future__ import annotations

import logging
import os
import sys
import time

__all__ = ["Progress", "progress", "format_duration"]

_ENV = "EFTFLOW_PROGRESS"


def format_duration(seconds: float) -> str:
    """``"2 h 05 min"``, ``"3 min 12 s"`` or ``"45 s"``."""
    s = max(int(round(seconds)), 0)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


def _number(x: float) -> str:
    """``12 345``, ``12.3`` or ``0.12``: thousands spaced, small numbers with two digits."""
    if abs(x) >= 100:
        return f"{x:,.0f}".replace(",", " ")
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2g}"


def _mode() -> str:
    mode = os.environ.get(_ENV, "").strip().lower()
    if mode in ("bar", "log", "off"):
        return mode
    try:
        return "bar" if sys.stderr.isatty() else "log"
    except (AttributeError, ValueError):  # closed or replaced stderr
        return "log"


class Progress:
    """Counts work done towards ``total`` and shows it (see the module notes)."""

    def __init__(
        self,
        total: float | None,
        desc: str,
        *,
        unit: str = "events",
        logger: logging.Logger | None = None,
        every: float = 30.0,
        mode: str | None = None,
    ):
        self.total = None if total is None else float(total)
        self.desc, self.unit, self.every = desc, unit, float(every)
        self.log = logger or logging.getLogger("eftflow.progress")
        self.mode = mode or _mode()
        self.n: float = 0
        self.t0 = self._last = time.perf_counter()
        self._bar = None
        self._closed = False
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                desc=desc,
                unit=f" {unit}",
                unit_scale=True,
                dynamic_ncols=True,
                file=sys.stderr,
                leave=False,
                smoothing=0.1,
            )

    def update(self, n: float = 1) -> None:
        """Add ``n`` units of work done."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log":
            now = time.perf_counter()
            if now - self._last >= self.every:
                self._last = now
                self.log.info("%s", self.line())

    def line(self) -> str:
        """The progress as one line of text (what log mode writes)."""
        elapsed = time.perf_counter() - self.t0
        rate = self.n / elapsed if elapsed > 0 else 0.0
        done = _number(self.n) if self.n >= 100 else f"{self.n:g}"
        if self.total:
            total = _number(self.total) if self.total >= 100 else f"{self.total:g}"
            text = f"{self.desc}: {done}/{total} {self.unit} ({100 * self.n / self.total:.0f} %)"
        else:
            text = f"{self.desc}: {done} {self.unit}"
        text += f", {_number(rate)} {self.unit}/s"
        if self.total and rate > 0 and self.n < self.total:
            text += f", about {format_duration((self.total - self.n) / rate)} left"
        elif elapsed >= 1 and (not self.total or self.n >= self.total):
            text += f", {format_duration(elapsed)} in all"
        return text

    def close(self) -> None:
        """End the display: the bar disappears; log mode writes its last line if it wrote any."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log" and self._last > self.t0:
            self.log.info("%s", self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(
    total: float | None,
    desc: str,
    *,
    unit: str = "events",
    logger: logging.Logger | None = None,
    every: float = 30.0,
) -> Progress:
    """A :class:`Progress` for ``total`` units of work (``None``: unknown), shown as ``desc``."""
    return Progress(total, desc, unit=unit, logger=logger, every=every)
