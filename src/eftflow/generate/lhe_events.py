"""Columnar containers for Les Houches events: :class:`LHEEvents`, :class:`LHEInit`.

One :class:`LHEEvents` holds a chunk of events as flat numpy arrays:

* per event (shape ``(n,)``): ``nup``, ``idprup`` (int32) and ``xwgtup``, ``scalup``, ``aqedup``,
  ``aqcdup`` (float64);
* per particle, flattened over the chunk (shape ``(n_particles,)``): ``pid``, ``status``,
  ``mother1``, ``mother2``, ``col1``, ``col2`` (int32) and ``px``, ``py``, ``pz``, ``e``, ``m``,
  ``lifetime``, ``spin`` (float64), with ``offsets`` (shape ``(n + 1,)``, int64) so that the
  particles of event ``i`` are ``offsets[i]:offsets[i + 1]``;
* ``weights`` (shape ``(n, n_weights)``, float64) in the order of ``weight_ids``.

Example
-------
>>> ev = LHEEvents.from_fixed(
...     pid=[[11, -11]], status=[[1, 1]], px=[[1.0, -1.0]], py=[[0.0, 0.0]], pz=[[0.0, 0.0]],
...     e=[[1.0, 1.0]], xwgtup=[2.0], weights=[[2.0, 3.0]], weight_ids=["sm", "bsm"])
>>> ev.n_events, ev.nup.tolist(), ev.weight("bsm").tolist()
(1, [2], [3.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np

from eftflow.errors import InputError

__all__ = ["LHEEvents", "LHEInit", "LHEProcess", "EVENT_COLUMNS", "PARTICLE_COLUMNS"]

#: per-event columns and their dtypes, in the order of the LHE event line
EVENT_COLUMNS: dict[str, type] = {
    "nup": np.int32,
    "idprup": np.int32,
    "xwgtup": np.float64,
    "scalup": np.float64,
    "aqedup": np.float64,
    "aqcdup": np.float64,
}
#: per-particle columns and their dtypes, in the order of the LHE particle line
PARTICLE_COLUMNS: dict[str, type] = {
    "pid": np.int32,
    "status": np.int32,
    "mother1": np.int32,
    "mother2": np.int32,
    "col1": np.int32,
    "col2": np.int32,
    "px": np.float64,
    "py": np.float64,
    "pz": np.float64,
    "e": np.float64,
    "m": np.float64,
    "lifetime": np.float64,
    "spin": np.float64,
}


@dataclass(frozen=True)
class LHEProcess:
    """One process line of the ``<init>`` block: XSECUP XERRUP XMAXUP LPRUP (pb)."""

    cross_section: float
    error: float = 0.0
    max_weight: float = 0.0
    process_id: int = 1


@dataclass(frozen=True)
class LHEInit:
    """The ``<init>`` block.

    ``weighting_strategy`` is IDWTUP (MadGraph writes −4: weighted events of either sign, with
    the cross section being the mean weight when ``event_norm = average``). ``extra_lines`` are
    written verbatim after the process lines (e.g. a ``<generator ...>`` tag).
    """

    beam_ids: tuple[int, int] = (2212, 2212)
    beam_energies: tuple[float, float] = (6500.0, 6500.0)
    pdf_groups: tuple[int, int] = (0, 0)
    pdf_sets: tuple[int, int] = (0, 0)
    weighting_strategy: int = -4
    processes: tuple[LHEProcess, ...] = (LHEProcess(0.0),)
    extra_lines: tuple[str, ...] = ()

    @property
    def cross_section(self) -> float:
        """Σ of XSECUP over the processes (pb)."""
        return float(sum(p.cross_section for p in self.processes))


@dataclass
class LHEEvents:
    """A chunk of events in columnar form (see the module docstring for the columns)."""

    nup: np.ndarray
    idprup: np.ndarray
    xwgtup: np.ndarray
    scalup: np.ndarray
    aqedup: np.ndarray
    aqcdup: np.ndarray
    offsets: np.ndarray
    pid: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    mother2: np.ndarray
    col1: np.ndarray
    col2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    m: np.ndarray
    lifetime: np.ndarray
    spin: np.ndarray
    weights: np.ndarray
    weight_ids: tuple[str, ...] = ()
    #: line number (1-based) of each event's ``<event>`` tag in its file, if read from one
    event_lines: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.event_lines is not None:
            self.event_lines = np.asarray(self.event_lines, dtype=np.int64)
        for name, dtype in {**EVENT_COLUMNS, **PARTICLE_COLUMNS}.items():
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        self.weight_ids = tuple(str(w) for w in self.weight_ids)
        n = self.nup.shape[0]
        w = np.asarray(self.weights, dtype=np.float64)
        self.weights = w.reshape(n, len(self.weight_ids)) if w.size or n == 0 else w.reshape(n, 0)
        for name in EVENT_COLUMNS:
            if getattr(self, name).shape != (n,):
                raise InputError(
                    f"column {name} has shape {getattr(self, name).shape}, expected ({n},)"
                )
        if self.offsets.shape != (n + 1,) or self.offsets[0] != 0:
            raise InputError(
                "offsets must have shape (n_events + 1,) and start at 0", field="offsets"
            )
        if not np.array_equal(np.diff(self.offsets), self.nup):
            raise InputError("offsets do not match NUP (particles per event)", field="offsets")
        n_p = int(self.offsets[-1])
        for name in PARTICLE_COLUMNS:
            if getattr(self, name).shape != (n_p,):
                raise InputError(
                    f"particle column {name} has shape {getattr(self, name).shape}, expected ({n_p},)"
                )
        if self.weights.shape != (n, len(self.weight_ids)):
            raise InputError(
                f"weights have shape {self.weights.shape}, expected ({n}, {len(self.weight_ids)})",
                field="weights",
            )

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_fixed(
        cls,
        *,
        pid,
        px,
        py,
        pz,
        e,
        xwgtup,
        status=None,
        mother1=None,
        mother2=None,
        col1=None,
        col2=None,
        m=None,
        lifetime=None,
        spin=None,
        idprup=1,
        scalup=0.0,
        aqedup=-1.0,
        aqcdup=-1.0,
        weights=None,
        weight_ids: Sequence[str] = (),
    ) -> LHEEvents:
        """Build events with the same number of particles each, from (n, k) arrays.

        Missing particle columns default to 0 (``status`` to 1, ``spin`` to 9 = unpolarised,
        ``m`` to the invariant mass computed from the four-momentum); scalars broadcast.
        """
        pid = np.atleast_2d(np.asarray(pid))
        n, k = pid.shape

        def col(v, default):
            v = default if v is None else v
            return np.broadcast_to(np.asarray(v, dtype=float), (n, k)).reshape(-1)

        px_, py_, pz_, e_ = (col(v, 0.0) for v in (px, py, pz, e))
        if m is None:
            m = np.sqrt(np.maximum(e_**2 - px_**2 - py_**2 - pz_**2, 0.0)).reshape(n, k)
        ev = lambda v: np.broadcast_to(np.asarray(v, dtype=float), (n,))  # noqa: E731
        nw = len(weight_ids)
        return cls(
            nup=np.full(n, k),
            idprup=ev(idprup),
            xwgtup=ev(xwgtup),
            scalup=ev(scalup),
            aqedup=ev(aqedup),
            aqcdup=ev(aqcdup),
            offsets=np.arange(n + 1) * k,
            pid=pid.reshape(-1),
            status=col(status, 1.0),
            mother1=col(mother1, 0.0),
            mother2=col(mother2, 0.0),
            col1=col(col1, 0.0),
            col2=col(col2, 0.0),
            px=px_,
            py=py_,
            pz=pz_,
            e=e_,
            m=col(m, 0.0),
            lifetime=col(lifetime, 0.0),
            spin=col(spin, 9.0),
            weights=np.zeros((n, 0))
            if weights is None
            else np.asarray(weights, float).reshape(n, nw),
            weight_ids=tuple(weight_ids),
        )

    @classmethod
    def concatenate(cls, chunks: Sequence[LHEEvents]) -> LHEEvents:
        """Join chunks with the same weight ids into one."""
        if not chunks:
            raise InputError("nothing to concatenate")
        ids = chunks[0].weight_ids
        if any(c.weight_ids != ids for c in chunks):
            raise InputError("chunks have different weight ids")
        if len(chunks) == 1:
            return chunks[0]
        cols = {
            k: np.concatenate([getattr(c, k) for c in chunks])
            for k in {**EVENT_COLUMNS, **PARTICLE_COLUMNS}
        }
        offsets = np.concatenate([[0], np.cumsum(cols["nup"], dtype=np.int64)])
        weights = np.concatenate([c.weights for c in chunks])
        lines = None
        if all(c.event_lines is not None for c in chunks):
            lines = np.concatenate([c.event_lines for c in chunks])
        return cls(**cols, offsets=offsets, weights=weights, weight_ids=ids, event_lines=lines)

    # --- access ----------------------------------------------------------------------------
    @property
    def n_events(self) -> int:
        return int(self.nup.shape[0])

    def __len__(self) -> int:
        return self.n_events

    @property
    def first_line(self) -> int | None:
        """Line number of the first event in its file (``None`` if unknown or empty)."""
        if self.event_lines is None or not self.n_events:
            return None
        return int(self.event_lines[0])

    @property
    def n_particles(self) -> int:
        return int(self.offsets[-1])

    def weight(self, weight_id: str) -> np.ndarray:
        """The weight column with id ``weight_id`` (shape ``(n,)``)."""
        try:
            return self.weights[:, self.weight_ids.index(weight_id)]
        except ValueError:
            raise InputError(
                f"no weight with id {weight_id!r}; available: {', '.join(self.weight_ids) or 'none'}",
                field="weights",
            ) from None

    def particle_array(self, name: str) -> np.ndarray:
        """A particle column as (n, k) when every event has k particles (else InputError)."""
        if self.n_events and not np.all(self.nup == self.nup[0]):
            raise InputError("events have different numbers of particles; use offsets", field=name)
        k = int(self.nup[0]) if self.n_events else 0
        return getattr(self, name).reshape(self.n_events, k)

    def slice(self, start: int, stop: int) -> LHEEvents:
        """Events ``start:stop`` (views, no copy)."""
        a, b = int(self.offsets[start]), int(self.offsets[stop])
        cols = {k: getattr(self, k)[start:stop] for k in EVENT_COLUMNS}
        cols.update({k: getattr(self, k)[a:b] for k in PARTICLE_COLUMNS})
        return replace(
            self,
            **cols,
            offsets=self.offsets[start : stop + 1] - a,
            weights=self.weights[start:stop],
            event_lines=None if self.event_lines is None else self.event_lines[start:stop],
        )

    def columns(self) -> dict[str, np.ndarray]:
        """All arrays by name (event columns, particle columns, ``offsets``, ``weights``)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray) and f.name != "event_lines"
        }
