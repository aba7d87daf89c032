"""Point evaluation: unit cube -> parameters -> components -> LogLike, and the evaluator.

:class:`Pipeline` computes the printed quantities of a batch of unit-cube points (one process).
:class:`Evaluator` is what scanners call: it numbers points per rank (``MPIrank``,
``pointID``), replays committed points on resume, hands rows to the printer, checkpoints after
each flush and stops cleanly on a signal. :class:`~eftflow.inference.scan.mpi.MPIEvaluator`
spreads the batch over MPI ranks.

Invalid points (a component returned NaN/±inf or raised
:class:`~eftflow.inference.scan.components.InvalidPoint`, or the running LogLike fell below
``invalid_loglike``) get ``LogLike = invalid_loglike`` and are still printed; the components
not computed have ``_isvalid = 0``. ``Invalidation Code``: 0 valid, 1 non-finite value,
2 InvalidPoint raised, 3 below the floor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eftflow.errors import BackendError, InputError
from eftflow.inference.scan.components import Component, InvalidPoint

__all__ = ["Pipeline", "Evaluator", "ScanInterrupted", "IDENTITY_COLUMNS", "Rows"]

log = logging.getLogger(__name__)

IDENTITY_COLUMNS = ("MPIrank", "pointID", "scanID")
Rows = dict  # name -> (values ndarray, isvalid ndarray[bool])


class ScanInterrupted(Exception):  # noqa: N818
    """The scan stopped on a signal (or ``stop_after``) after writing a checkpoint."""


@dataclass
class Pipeline:
    """Compute every printed quantity for a batch of unit-cube points."""

    params: object  # ParameterModel
    components: list[Component]
    likelihood_keys: list[str]
    bindings: dict
    floor: float = -1.0e6

    def __post_init__(self):
        self.unit_columns = [f"unitCubeParameters[{i}]" for i in range(self.params.ndim)]
        self.param_columns = [(p.qualified, p.label) for p in self.params.parameters]
        self.comp_columns = [(c.key, c.label) for c in self.components]
        self._like = set(self.likelihood_keys)

    @property
    def columns(self) -> list[str]:
        """Printed quantities in order (identity columns first)."""
        return [
            *IDENTITY_COLUMNS,
            *self.unit_columns,
            *(lab for _, lab in self.param_columns),
            *(lab for _, lab in self.comp_columns),
            "LogLike",
            "ModifiedLogLike",
            "Invalidation Code",
            "Runtime(ms)",
        ]

    def evaluate(self, unit: np.ndarray) -> Rows:
        """Rows (without identity columns) for ``unit`` of shape ``(n, ndim)``."""
        unit = np.asarray(unit, dtype=float).reshape(-1, self.params.ndim)
        n = unit.shape[0]
        rows: Rows = {}
        for i, name in enumerate(self.unit_columns):
            rows[name] = (unit[:, i].copy(), np.ones(n, bool))
        pvals = self.params.transform(unit)
        for q, lab in self.param_columns:
            v = np.asarray(pvals[q], dtype=float)
            rows[lab] = (v, np.isfinite(v))
        comp_vals = {k: np.full(n, np.nan) for k, _ in self.comp_columns}
        comp_ok = {k: np.zeros(n, bool) for k, _ in self.comp_columns}
        loglike = np.empty(n)
        code = np.zeros(n, dtype=float)
        runtime = np.empty(n)
        for j in range(n):
            t0 = time.perf_counter()
            store: dict[str, object] = {}
            total, c = 0.0, 0
            for comp in self.components:
                inputs = {
                    dep: (pvals[t][j] if kind == "param" else store[t])
                    for dep, (kind, t) in self.bindings[comp.key].items()
                }
                try:
                    with np.errstate(all="ignore"):
                        value = comp(inputs)
                except InvalidPoint as err:
                    log.debug("point invalid in %s: %s", comp.key, err)
                    c = 2
                    break
                except Exception as err:
                    raise BackendError(
                        f"component {comp.key!r} ({comp.function.name}) failed: "
                        f"{type(err).__name__}: {err}",
                        field=f"components.{comp.key}",
                    ) from err
                if np.ndim(value) == 0:
                    fv = float(value)
                    if not np.isfinite(fv):
                        c = 1
                        break
                    comp_vals[comp.key][j] = fv
                    comp_ok[comp.key][j] = True
                store[comp.key] = value
                if comp.key in self._like:
                    if np.ndim(value) != 0:
                        raise BackendError(
                            f"likelihood component {comp.key!r} ({comp.function.name}) returned "
                            f"a value of shape {np.shape(value)}; a log-likelihood is one number",
                            field=f"components.{comp.key}",
                        )
                    total += float(value)
                    if total < self.floor:
                        c = 3
                        break
            loglike[j] = total if c == 0 else self.floor
            code[j] = c
            runtime[j] = 1e3 * (time.perf_counter() - t0)
        for k, lab in self.comp_columns:
            rows[lab] = (comp_vals[k], comp_ok[k])
        ok = np.ones(n, bool)
        rows["LogLike"] = (loglike, ok)
        rows["ModifiedLogLike"] = (loglike.copy(), ok)
        rows["Invalidation Code"] = (code, ok)
        rows["Runtime(ms)"] = (runtime, ok)
        return rows


def concat_rows(parts: list[Rows]) -> Rows:
    parts = [p for p in parts if p and len(next(iter(p.values()))[0])]
    if not parts:
        return {}
    return {
        k: (np.concatenate([p[k][0] for p in parts]), np.concatenate([p[k][1] for p in parts]))
        for k in parts[0]
    }


class Evaluator:
    """Evaluate batches for a scanner; number, print, checkpoint, replay.

    Parameters
    ----------
    pipeline
        The :class:`Pipeline`.
    printer
        An open :class:`~eftflow.inference.scan.printers.Printer`.
    scan_id
        Value of the ``scanID`` column.
    replay
        Committed rows of an interrupted run (resume), replayed instead of re-evaluated.
    checkpoint
        ``checkpoint(n_rows, last_point_ids)`` called after each flush.
    should_stop
        Returns True when the scan must stop (signal received).
    stop_after
        Stop (as if killed by a signal, after a checkpoint) once this many new points were
        evaluated; for tests and for splitting long scans.
    """

    size = 1

    def __init__(
        self,
        pipeline: Pipeline,
        printer,
        *,
        scan_id: int = 0,
        replay: Rows | None = None,
        checkpoint: Callable | None = None,
        should_stop: Callable[[], bool] | None = None,
        stop_after: int | None = None,
        last_point_ids: dict[int, int] | None = None,
    ):
        self.pipeline = pipeline
        self.printer = printer
        self.scan_id = scan_id
        self.replay = replay or {}
        self._replay_n = len(self.replay["LogLike"][0]) if self.replay else 0
        self._replay_pos = 0
        self.checkpoint = checkpoint
        #: the checkpoint's path, named in resume errors (set by the scan driver)
        self.checkpoint_file: str | None = None
        self.should_stop = should_stop or (lambda: False)
        self.stop_after = stop_after
        self.n_new = 0
        self.n_rows = self._replay_n
        self.last_point_ids = dict(last_point_ids or {})
        self.scanner_rng: np.random.Generator | None = None
        self.expected_rng_state: dict | None = None
        self.weights: dict[tuple[int, int], float] = {}

    @property
    def ndim(self) -> int:
        return self.pipeline.params.ndim

    # -- the part MPI replaces ---------------------------------------------------------------
    def _compute(self, unit: np.ndarray) -> tuple[Rows, np.ndarray]:
        """Rows for new points and the rank that computed each."""
        return self.pipeline.evaluate(unit), np.zeros(len(unit), dtype=np.int64)

    # ----------------------------------------------------------------------------------------
    def __call__(self, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate unit-cube points ``(n, ndim)``.

        Returns
        -------
        (loglike (n,), ids (n, 2))
            ``ids`` holds (MPIrank, pointID) of each row.
        """
        unit = np.atleast_2d(np.asarray(unit, dtype=float))
        n = len(unit)
        loglike = np.empty(n)
        ids = np.empty((n, 2), dtype=np.int64)
        m = min(n, self._replay_n - self._replay_pos)
        if m > 0:
            self._replay_batch(unit[:m], loglike[:m], ids[:m])
        if m < n:
            rows, ranks = self._compute(unit[m:])
            pid = np.empty(n - m, dtype=np.int64)
            for r in np.unique(ranks):
                sel = ranks == r
                start = self.last_point_ids.get(int(r), 0)
                pid[sel] = start + 1 + np.arange(sel.sum())
                self.last_point_ids[int(r)] = int(start + sel.sum())
            ok = np.ones(n - m, bool)
            rows["MPIrank"] = (ranks.astype(float), ok)
            rows["pointID"] = (pid.astype(float), ok)
            rows["scanID"] = (np.full(n - m, float(self.scan_id)), ok)
            self.printer.write(rows)
            self.n_new += n - m
            self.n_rows += n - m
            loglike[m:] = rows["LogLike"][0]
            ids[m:, 0], ids[m:, 1] = ranks, pid
            if self.printer.pending >= self.printer.buffer:
                self.commit()
            # stop at the end of a call, so that the checkpointed generator state is the one
            # a replay reaches at the same row
            if self.should_stop():
                self._interrupt(f"{getattr(self.should_stop, 'name', None) or 'signal'} received")
            if self.stop_after is not None and self.n_new >= self.stop_after:
                self._interrupt("stop_after reached")
        return loglike, ids

    def _replay_batch(self, unit, loglike, ids) -> None:
        a, b = self._replay_pos, self._replay_pos + len(unit)
        stored = np.column_stack(
            [self.replay[f"unitCubeParameters[{i}]"][0][a:b] for i in range(self.ndim)]
        )
        if not np.array_equal(stored, unit):
            bad = int(np.argmax(np.any(stored != unit, axis=1))) + a
            raise InputError(
                "resume: the scanner does not reproduce the committed points (first difference "
                f"at row {bad}); the scan is not deterministic and cannot be resumed",
                file=self.checkpoint_file,
                field=f"row {bad}",
            )
        loglike[:] = self.replay["LogLike"][0][a:b]
        ids[:, 0] = self.replay["MPIrank"][0][a:b]
        ids[:, 1] = self.replay["pointID"][0][a:b]
        self._replay_pos = b
        if b == self._replay_n:
            log.info("resume: replayed %d committed points", self._replay_n)
            state = None if self.scanner_rng is None else self.scanner_rng.bit_generator.state
            if self.expected_rng_state is not None and state != self.expected_rng_state:
                raise InputError(
                    "resume: the scanner's random state after replaying the committed points "
                    "differs from the checkpoint's; the scan is not deterministic",
                    file=self.checkpoint_file,
                    field="rng_states.scanner",
                )

    @property
    def replaying(self) -> bool:
        return self._replay_pos < self._replay_n

    def commit(self) -> None:
        """Flush the printer and write the checkpoint."""
        self.printer.flush()
        if self.checkpoint is not None:
            self.checkpoint(self.n_rows, self.last_point_ids, self.scanner_rng)

    def _interrupt(self, why: str) -> None:
        self.commit()
        log.info("scan interrupted (%s) after %d points; checkpoint written", why, self.n_rows)
        raise ScanInterrupted(f"{why} after {self.n_rows} points")

    def close(self) -> None:
        """End of scan (workers released by the MPI version)."""
