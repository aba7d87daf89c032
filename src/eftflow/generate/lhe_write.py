"""Write Les Houches Event files (LHEF 3.0), vectorised, gzip and atomic.

Layout written (MadGraph's line formats, so that MadGraph-oriented tools and our fast reader
both handle it)::

    <LesHouchesEvents version="3.0">
    <header>
    <eftflow>
    <![CDATA[
    {"event_norm": "sum", "weight_ids": [...], "provenance": {...}}
    ]]>
    </eftflow>
    ...header_extra...
    <initrwgt>
    <weightgroup name='eftflow' weight_name_strategy='includeIdInWeightName'>
    <weight id='sm'>sm</weight>
    ...
    </weightgroup>
    </initrwgt>
    </header>
    <init>
    2212 2212 6.500000e+03 6.500000e+03 0 0 0 0 -4 1
    1.234000e+03 1.000000e+00 1.234000e+03 1
    </init>
    <event>
     2      1 +1.2340000000000000e-01 9.11876000e+01 7.54677100e-03 1.18000000e-01
           11  1    0    0    0    0 +1.0000000000e+01 ...
    <rwgt>
    <wgt id='sm'> +1.2340000000000000e-01 </wgt>
    </rwgt>
    </event>
    </LesHouchesEvents>

Weights are written in pb per event with ``event_norm = sum`` (Σ weights = σ), with 17
significant digits by default (a write → read round trip agrees to a few 1e-16 relative).

Example
-------
>>> import tempfile, pathlib
>>> from eftflow.generate.lhe_events import LHEEvents, LHEInit, LHEProcess
>>> path = pathlib.Path(tempfile.mkdtemp()) / "events.lhe.gz"
>>> ev = LHEEvents.from_fixed(pid=[[11, -11]], px=[[3.0, -3.0]], py=[[0.0, 0.0]], pz=[[4.0, -4.0]],
...                           e=[[5.0, 5.0]], xwgtup=[0.5], weights=[[0.5, 0.7]],
...                           weight_ids=["sm", "bsm"])
>>> init = LHEInit(processes=(LHEProcess(0.5, 0.01, 0.5, 1),))
>>> with LHEWriter(path, init=init, weight_ids=["sm", "bsm"]) as w:
...     w.write(ev)
>>> from eftflow.generate.lhe import read_lhe
>>> read_lhe(path).weight("bsm").tolist()
[0.7]
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.generate.lhe_events import EVENT_COLUMNS, PARTICLE_COLUMNS, LHEEvents, LHEInit
from eftflow.store.atomic import atomic_path

__all__ = ["LHEWriter", "format_init", "format_initrwgt", "format_events"]

log = logging.getLogger(__name__)


def format_init(init: LHEInit) -> str:
    """The ``<init>`` block as text (MadGraph's number formats)."""
    b = init
    lines = [
        "<init>",
        f"{int(b.beam_ids[0])} {int(b.beam_ids[1])} {b.beam_energies[0]:.6e} {b.beam_energies[1]:.6e} "
        f"{int(b.pdf_groups[0])} {int(b.pdf_groups[1])} {int(b.pdf_sets[0])} {int(b.pdf_sets[1])} "
        f"{int(b.weighting_strategy)} {len(b.processes)}",
    ]
    for p in b.processes:
        lines.append(f"{p.cross_section:.6e} {p.error:.6e} {p.max_weight:.6e} {int(p.process_id)}")
    lines.extend(b.extra_lines)
    lines.append("</init>")
    return "\n".join(lines) + "\n"


def format_initrwgt(
    weight_ids: Sequence[str], descriptions: Sequence[str] | None = None, *, group: str = "eftflow"
) -> str:
    """The ``<initrwgt>`` block with one weight group (single quotes, as MadGraph)."""
    if not weight_ids:
        return ""
    descriptions = list(weight_ids) if descriptions is None else list(descriptions)
    lines = [
        "<initrwgt>",
        f"<weightgroup name='{group}' weight_name_strategy='includeIdInWeightName'>",
    ]
    for wid, desc in zip(weight_ids, descriptions):
        lines.append(f"<weight id='{wid}'>{desc}</weight>")
    lines += ["</weightgroup>", "</initrwgt>"]
    return "\n".join(lines) + "\n"


def _event_format(
    k: int, weight_ids: Sequence[str], momentum_digits: int, weight_digits: int
) -> str:
    d, w = momentum_digits, weight_digits
    info = f"%2d %6d %+.{w}e %.8e %.8e %.8e\n"
    particle = f"%9d %2d %4d %4d %4d %4d %+.{d}e %+.{d}e %+.{d}e %.{d}e %.{d}e %.4e %.4e\n"
    text = "<event>\n" + info + particle * k
    if weight_ids:
        text += "<rwgt>\n"
        for wid in weight_ids:
            text += f"<wgt id='{wid.replace('%', '%%')}'> %+.{w}e </wgt>\n"
        text += "</rwgt>\n"
    return text + "</event>\n"


def format_events(events: LHEEvents, *, momentum_digits: int = 10, weight_digits: int = 16) -> str:
    """Events as LHE text, MadGraph's line layout, one format operation per event."""
    n = events.n_events
    if n == 0:
        return ""
    per_event = np.column_stack([getattr(events, c).astype(np.float64) for c in EVENT_COLUMNS])
    per_particle = np.column_stack(
        [getattr(events, c).astype(np.float64) for c in PARTICLE_COLUMNS]
    )
    out: list[str | None] = [None] * n
    for k in np.unique(events.nup):
        idx = np.flatnonzero(events.nup == k)
        fmt = _event_format(int(k), events.weight_ids, momentum_digits, weight_digits)
        if int(k):
            pidx = events.offsets[idx][:, None] + np.arange(int(k))[None, :]
            parts = per_particle[pidx.reshape(-1)].reshape(len(idx), -1)
        else:
            parts = np.zeros((len(idx), 0))
        rows = np.hstack([per_event[idx], parts, events.weights[idx]]).tolist()
        for i, row in zip(idx.tolist(), rows):
            out[i] = fmt % tuple(row)
    return "".join(out)  # type: ignore[arg-type]


class LHEWriter:
    """Write an LHE file atomically: ``path`` appears only when the writer closes cleanly.

    Parameters
    ----------
    path
        Output file; gzip-compressed when it ends in ``.gz`` (or ``compress=True``).
    init
        The ``<init>`` block. Cross sections there are informational; the weights are what counts.
    weight_ids
        Weight ids written in ``<initrwgt>`` and, in this order, in every event's ``<rwgt>``
        (the benchmark names).
    weight_descriptions
        Text of each ``<weight>`` tag (default: the id).
    header_extra
        Text inserted verbatim in ``<header>`` (e.g. an ``<slha>`` block or generator settings).
    provenance
        JSON-serialisable dict recorded in the ``<eftflow>`` header block.
    weight_group
        Name of the weight group.
    momentum_digits, weight_digits
        Digits after the decimal point for momenta (10, as MadGraph) and for XWGTUP and the
        weights (16: round trip to a few 1e-16 relative).
    compress, compresslevel
        gzip or not (default: from the suffix) and the gzip level.

    Use as a context manager; :meth:`write` / :meth:`write_events` may be called many times
    (streaming, constant memory).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        init: LHEInit,
        weight_ids: Sequence[str] = (),
        weight_descriptions: Sequence[str] | None = None,
        header_extra: str = "",
        provenance: dict | None = None,
        weight_group: str = "eftflow",
        momentum_digits: int = 10,
        weight_digits: int = 16,
        compress: bool | None = None,
        compresslevel: int = 6,
    ):
        self.path = Path(path)
        self.init = init
        self.weight_ids = tuple(str(w) for w in weight_ids)
        if len(set(self.weight_ids)) != len(self.weight_ids):
            raise InputError("weight ids must be unique", file=self.path, field="weight_ids")
        for wid in self.weight_ids:
            if not wid or any(c in wid for c in "'\"<>& \t\n"):
                raise InputError(
                    f"weight id {wid!r} must be non-empty without quotes, spaces, <, > or &",
                    file=self.path,
                    field="weight_ids",
                )
        self.weight_descriptions = weight_descriptions
        self.header_extra = header_extra
        self.provenance = provenance or {}
        self.weight_group = weight_group
        self.momentum_digits = int(momentum_digits)
        self.weight_digits = int(weight_digits)
        self.compress = self.path.suffix == ".gz" if compress is None else bool(compress)
        self.compresslevel = int(compresslevel)
        self.n_events = 0
        self._stack: contextlib.ExitStack | None = None
        self._fh: io.TextIOBase | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> LHEWriter:
        """Open the temporary file and write the header (called by ``__enter__``)."""
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_path(self.path))
        raw = stack.enter_context(open(tmp, "wb"))
        if self.compress:
            raw = stack.enter_context(
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, compresslevel=self.compresslevel, mtime=0
                )
            )
        self._fh = stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8", newline="\n"))
        self._stack = stack
        self._fh.write(self._header())
        return self

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        assert self._fh is not None
        self._fh.write("</LesHouchesEvents>\n")
        stack.close()
        log.info("wrote %d events to %s", self.n_events, self.path)

    def __enter__(self) -> LHEWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._stack is not None:
            stack, self._stack = self._stack, None
            with contextlib.suppress(BaseException):  # removes the temporary file
                stack.__exit__(exc_type, exc, tb)
            return
        self.close()

    # --- content ---------------------------------------------------------------------------
    def _header(self) -> str:
        meta = {
            "event_norm": "sum",
            "weight_ids": list(self.weight_ids),
            "provenance": self.provenance,
        }
        text = '<LesHouchesEvents version="3.0">\n<header>\n<eftflow>\n<![CDATA[\n'
        text += json.dumps(meta, sort_keys=True, default=str) + "\n]]>\n</eftflow>\n"
        if self.header_extra:
            text += self.header_extra.rstrip("\n") + "\n"
        text += format_initrwgt(self.weight_ids, self.weight_descriptions, group=self.weight_group)
        text += "</header>\n" + format_init(self.init)
        return text

    def write(self, events: LHEEvents) -> None:
        """Append a chunk of events (their ``weight_ids`` must equal the writer's)."""
        if self._fh is None:
            raise InputError("LHEWriter is not open: use it as a context manager", file=self.path)
        if tuple(events.weight_ids) != self.weight_ids:
            raise InputError(
                f"events carry weight ids {list(events.weight_ids)}, the file declares {list(self.weight_ids)}",
                file=self.path,
                field="weight_ids",
            )
        bad = ~np.isfinite(events.weights).all(axis=1) | ~np.isfinite(events.xwgtup)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"event {self.n_events + i} has a NaN or infinite weight",
                file=self.path,
                field="weights",
            )
        self._fh.write(
            format_events(
                events, momentum_digits=self.momentum_digits, weight_digits=self.weight_digits
            )
        )
        self.n_events += events.n_events

    def write_events(self, *, offsets=None, weights=None, **columns) -> None:
        """Append events given as columns.

        Particle columns are either flat arrays with ``offsets`` (n + 1) or, without ``offsets``,
        arrays of shape (n, k) (k particles per event; see :meth:`LHEEvents.from_fixed` for the
        defaults of missing columns). ``weights`` has shape (n, len(weight_ids)).
        """
        if offsets is None:
            events = LHEEvents.from_fixed(weights=weights, weight_ids=self.weight_ids, **columns)
        else:
            offsets = np.asarray(offsets, dtype=np.int64)
            n = offsets.shape[0] - 1
            n_p = int(offsets[-1])
            cols = dict(columns)
            cols.setdefault("nup", np.diff(offsets))
            defaults = {"idprup": 1, "scalup": 0.0, "aqedup": -1.0, "aqcdup": -1.0}
            for name in EVENT_COLUMNS:
                cols[name] = np.broadcast_to(
                    np.asarray(cols.get(name, defaults.get(name, 0))), (n,)
                )
            pdefaults = {"status": 1, "spin": 9.0}
            for name in PARTICLE_COLUMNS:
                if name == "m" and "m" not in cols:
                    e, px, py, pz = (np.asarray(cols[c], float) for c in ("e", "px", "py", "pz"))
                    cols["m"] = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
                cols[name] = np.broadcast_to(
                    np.asarray(cols.get(name, pdefaults.get(name, 0))), (n_p,)
                )
            w = np.zeros((n, 0)) if weights is None else np.asarray(weights, float)
            events = LHEEvents(**cols, offsets=offsets, weights=w, weight_ids=self.weight_ids)
        self.write(events)
