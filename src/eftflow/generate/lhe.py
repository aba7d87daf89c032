"""Read Les Houches Event files (LHEF 3.0, plain or gzip) into columnar numpy arrays, streaming.

:class:`LHEReader` reads the header once (:class:`~eftflow.generate.lhe_header.LHEHeader`), then
decodes the events block by block (about a MB of text at a time, so memory stays constant) and
yields :class:`~eftflow.generate.lhe_events.LHEEvents` chunks of ``chunk_size`` events. The
decoding is vectorised (:mod:`eftflow.generate.lhe_parse`). gzip files are inflated with ISA-L
when the optional ``isal`` package is installed (same bytes, about three times faster), else with
the standard library's ``zlib``.

Weights
    Every weight declared in ``<initrwgt>`` is read, in declaration order, into
    ``LHEEvents.weights`` with ids ``LHEEvents.weight_ids``. Given ``benchmarks``, the reader
    checks that every benchmark name is a weight id (else :class:`~eftflow.errors.InputError`
    listing what is missing and what is there); :meth:`LHEReader.benchmark_weights` then returns
    the columns in benchmark order. Weights and XWGTUP are returned in **pb per event** (Σ over
    the file = σ): with MadGraph's ``event_norm = average`` they are divided by the number of
    events, as MadMiner does (``normalize="auto"``; ``"sum"``/``"average"`` force a convention,
    ``None`` returns the numbers as written).

Checks (each an :class:`~eftflow.errors.InputError` naming the file and line)
    malformed or truncated files (also truncated gzip streams), wrong numbers of fields, NUP not
    matching the particle lines, ``<wgt>`` ids or counts differing from ``<initrwgt>``, NaN or
    infinite weights and — by default — negative weights (``negative_weights="error"``; use
    ``"allow"`` for NLO samples, whose negative weights are legitimate; LO MadGraph, the builtin
    generator and the toy never produce any).

Example
-------
>>> import tempfile, pathlib
>>> from eftflow.generate.lhe_events import LHEEvents, LHEInit
>>> from eftflow.generate.lhe_write import LHEWriter
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ev.lhe.gz"
>>> ev = LHEEvents.from_fixed(pid=[[11, -11]] * 3, px=[[1.0, -1.0]] * 3, py=0.0, pz=0.0, e=1.0,
...                           xwgtup=[1.0, 2.0, 3.0], weights=[[1, 2], [2, 3], [3, 4]],
...                           weight_ids=["sm", "bsm"])
>>> with LHEWriter(path, init=LHEInit(), weight_ids=["sm", "bsm"]) as w:
...     w.write(ev)
>>> reader = LHEReader(path, benchmarks=["bsm", "sm"], chunk_size=2)
>>> [len(c) for c in reader.iter_chunks()]
[2, 1]
>>> reader.benchmark_weights(reader.read()).sum(axis=0).tolist()
[9.0, 6.0]
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.generate.lhe_events import EVENT_COLUMNS, PARTICLE_COLUMNS, LHEEvents
from eftflow.generate.lhe_header import LHEHeader, parse_header
from eftflow.generate.lhe_parse import _PAD, ParsedBlock, parse_block

try:  # ISA-L inflate (python-isal): the same bytes, about three times faster than zlib
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    _igzip = _isal_zlib = None

__all__ = ["LHEReader", "read_lhe", "read_lhe_header", "open_lhe"]

log = logging.getLogger(__name__)
#: what a corrupt or truncated gzip stream raises (zlib, gzip and, when installed, ISA-L)
_GZIP_ERRORS = (EOFError, OSError, zlib.error) + (
    (_isal_zlib.error,) if _isal_zlib is not None else ()
)

NEGATIVE_WEIGHT_POLICIES = ("error", "warn", "allow")
NL = b"\n"


def open_lhe(path: str | os.PathLike):
    """Open an LHE file for binary reading, gzip or plain (detected from the content)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("LHE file not found", file=path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return _igzip.open(path, "rb") if _igzip is not None else gzip.open(path, "rb")
    return open(path, "rb")


def _stream_problem(err: BaseException) -> str:
    """What a gzip stream error means, for messages."""
    if isinstance(err, EOFError):
        return f"the gzip stream ends early ({err})"
    return f"corrupt or truncated gzip stream ({err})"


class _GzipStream:
    """Sequential reader of a gzip file (all members) with zlib and large reads.

    Faster than :mod:`gzip` for big reads; on a truncated stream it returns what could be
    inflated, then raises ``EOFError`` at the next read; ``zlib.error`` on corrupt data (CRC and
    length are checked by zlib at each member's end).
    """

    RAW = 1 << 20

    def __init__(self, path: Path):
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._eof = False

    def read(self, size: int) -> bytes:
        out: list[bytes] = []
        n = 0
        while n < size and not self._eof:
            if self._z.eof:  # end of a member: another may follow
                raw = self._z.unused_data
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                if not raw.strip(b"\x00"):
                    raw = self._fh.read(self.RAW)
                    if not raw.strip(b"\x00"):  # (trailing zeros are allowed, as in gzip)
                        self._eof = True
                        break
            else:
                raw = self._z.unconsumed_tail or self._fh.read(self.RAW)
                if not raw:
                    if out:  # hand out what was inflated; the next read raises
                        break
                    raise EOFError("compressed file ended before the end-of-stream marker")
            piece = self._z.decompress(raw, size - n)
            out.append(piece)
            n += len(piece)
        return b"".join(out)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Salvaging:
    """A stream that, when a gzip file turns out truncated, hands out all the text before the cut.

    ISA-L (and :mod:`gzip`) lose the text inflated in the read that meets the end of a truncated
    stream; then the rest is read again from the same position with :class:`_GzipStream`, which
    returns what can be inflated and raises ``EOFError`` at the next read.
    """

    def __init__(self, fh, path: Path):
        self._fh = fh
        self._path = path
        self._pos = 0

    def read(self, size: int) -> bytes:
        try:
            data = self._fh.read(size)
        except EOFError:
            if isinstance(self._fh, _GzipStream):
                raise
            self._fh.close()
            self._fh = _GzipStream(self._path)
            todo = self._pos
            while todo > 0:
                todo -= len(self._fh.read(min(todo, 1 << 20)))
            data = self._fh.read(size)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class _Raw:
    """Decoded events as the parser gives them (rows of numbers), before the columns are made."""

    info: np.ndarray  # (n, 6)
    particles: np.ndarray  # (n_particles, 13)
    nup: np.ndarray  # (n,)
    weights: np.ndarray  # (n, n_weights)
    lines: np.ndarray  # (n,)

    @property
    def n(self) -> int:
        return int(self.nup.shape[0])

    def split(self, k: int) -> tuple[_Raw, _Raw]:
        """The first ``k`` events and the rest."""
        kp = int(self.nup[:k].sum())
        first = _Raw(
            self.info[:k], self.particles[:kp], self.nup[:k], self.weights[:k], self.lines[:k]
        )
        rest = _Raw(
            self.info[k:], self.particles[kp:], self.nup[k:], self.weights[k:], self.lines[k:]
        )
        return first, rest


def _take(parts: list[_Raw], k: int) -> tuple[list[_Raw], list[_Raw]]:
    """The first ``k`` events of ``parts`` and the rest (views, no copies)."""
    taken, n = [], 0
    for i, p in enumerate(parts):
        if n + p.n >= k:
            first, rest = p.split(k - n)
            return taken + [first], ([rest] if rest.n else []) + parts[i + 1 :]
        taken.append(p)
        n += p.n
    return taken, []


def _join(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _open_stream(path: Path):
    """Like :func:`open_lhe`, with the fastest gzip reader available (ISA-L, else zlib)."""
    if not path.is_file():
        raise InputError("LHE file not found", file=path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != b"\x1f\x8b":
        return open(path, "rb")  # noqa: SIM115
    return _igzip.open(path, "rb") if _igzip is not None else _GzipStream(path)


def read_lhe_header(path: str | os.PathLike) -> LHEHeader:
    """Only the header (cheap: stops at ``</init>``)."""
    return LHEReader(path).header


def read_lhe(path: str | os.PathLike, **kwargs) -> LHEEvents:
    """Read a whole (small) file into one :class:`LHEEvents`; see :class:`LHEReader`."""
    return LHEReader(path, **kwargs).read()


class LHEReader:
    """Stream an LHE file as columnar chunks.

    Parameters
    ----------
    path
        ``.lhe`` or ``.lhe.gz`` (gzip is detected from the content).
    benchmarks
        Benchmark names that must be weight ids of the file (checked when the reader is made).
    chunk_size
        Events per yielded chunk (the last may be shorter).
    normalize
        ``"auto"`` (default), ``"sum"``, ``"average"`` or ``None``; see the module docstring.
    negative_weights
        ``"error"`` (default), ``"warn"`` or ``"allow"``.
    block_bytes
        Bytes of text decoded at a time (memory use is a few times this plus one chunk).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        benchmarks: Sequence[str] | None = None,
        chunk_size: int = 100_000,
        normalize: str | None = "auto",
        negative_weights: str = "error",
        block_bytes: int = 1 << 20,
    ):
        self.path = Path(path)
        if negative_weights not in NEGATIVE_WEIGHT_POLICIES:
            raise InputError(
                f"negative_weights must be one of {', '.join(NEGATIVE_WEIGHT_POLICIES)}",
                field="negative_weights",
            )
        if normalize not in ("auto", "sum", "average", None):
            raise InputError(
                "normalize must be 'auto', 'sum', 'average' or None", field="normalize"
            )
        if chunk_size < 1:
            raise InputError("chunk_size must be positive", field="chunk_size")
        self.chunk_size = int(chunk_size)
        self.negative_weights = negative_weights
        self.block_bytes = int(block_bytes)
        self._normalize = normalize
        self.header, self._rest, self._header_lines = self._read_header()
        self.weight_ids = self.header.weight_ids
        self.benchmarks = None if benchmarks is None else [str(b) for b in benchmarks]
        if self.benchmarks is not None:
            missing = [b for b in self.benchmarks if b not in self.weight_ids]
            if missing:
                raise InputError(
                    f"benchmarks {', '.join(missing)} have no weight in the file; its weight ids are: "
                    f"{', '.join(self.weight_ids) or 'none'}",
                    file=self.path,
                    field="initrwgt",
                )
        self._prefixes = self._weight_prefixes()
        self.n_events_read = 0

    # --- header ----------------------------------------------------------------------------
    def _read_header(self) -> tuple[LHEHeader, bytes, int]:
        data = b""
        with _Salvaging(open_lhe(self.path), self.path) as fh:
            while True:
                piece, err = self._fill(fh, 1 << 20)
                if not piece:
                    msg = "no complete <init> block: file is truncated or not LHE"
                    if err is not None:
                        msg = f"truncated LHE file: {_stream_problem(err)} within the header"
                    raise InputError(msg, file=self.path, field=f"line {data.count(NL) + 1}")
                data += piece
                end = data.find(b"</init>")
                if end >= 0:
                    nl = data.find(b"\n", end)
                    if nl >= 0 or len(piece) < (1 << 20):
                        break
        nl = data.find(b"\n", end)
        cut = len(data) if nl < 0 else nl + 1
        text = data[:cut].decode("utf-8", errors="replace")
        header = parse_header(text, path=self.path)
        self._header_bytes = cut
        return header, data[cut:], text.count("\n")

    def _weight_prefixes(self) -> list[bytes] | None:
        """Expected ``<wgt id='...'>`` of each weight, quote style learnt from the first event."""
        if not self.weight_ids:
            return None
        head = self._rest[: 1 << 16]
        quote = b"'"
        i = head.find(b"<wgt")
        if i >= 0:
            j = head.find(b"id=", i)
            if j >= 0 and head[j + 3 : j + 4] == b'"':
                quote = b'"'
        return [b"<wgt id=" + quote + w.encode() + quote + b">" for w in self.weight_ids]

    @property
    def event_norm(self) -> str | None:
        """The normalisation applied: ``"sum"``, ``"average"`` or ``None`` (as written)."""
        if self._normalize == "auto":
            return self.header.event_norm
        return self._normalize

    def _scale(self) -> float:
        norm = self.event_norm
        if norm in (None, "sum"):
            return 1.0
        if norm == "average":
            n = self.header.n_events
            if n is None:
                n = self._count_events()
            if n <= 0:
                raise InputError(
                    "event_norm = average but the number of events is 0", file=self.path
                )
            return 1.0 / n
        raise InputError(
            f"unsupported event_norm {norm!r}: expected 'average' or 'sum'",
            file=self.path,
            field="MGRunCard.event_norm",
        )

    def _count_events(self) -> int:
        n = 0
        with open_lhe(self.path) as fh:
            while piece := self._read(fh, self.block_bytes, 0):
                n += piece.count(b"</event>")
        return n

    # --- events ----------------------------------------------------------------------------
    def _fill(self, fh, size: int) -> tuple[bytes, BaseException | None]:
        """Up to ``size`` bytes, or nothing and the gzip error that ended the stream."""
        try:
            return fh.read(size), None
        except _GZIP_ERRORS as err:
            return b"", err

    def _read(self, fh, size: int, line: int) -> bytes:
        try:
            return fh.read(size)
        except _GZIP_ERRORS as err:
            raise InputError(
                f"corrupt or truncated gzip stream ({err}) after line {line}",
                file=self.path,
                field=f"line {line}",
            ) from None

    def _blocks(self) -> Iterator[tuple[ParsedBlock, int]]:
        """Yield (decoded block, 1-based line number of its first line), block by block."""
        line0 = self._header_lines + 1
        pad = b" " * _PAD
        with _Salvaging(_open_stream(self.path), self.path) as fh:
            todo = self._header_bytes  # skip the header
            while todo > 0:
                piece = self._read(fh, min(todo, 1 << 20), 1)
                if not piece:  # pragma: no cover - the header was read before
                    break
                todo -= len(piece)
            rest = b""
            eof = False
            n_done = 0  # complete events so far
            stream_error = None
            while not eof:
                more, stream_error = self._fill(fh, self.block_bytes)
                eof = not more or stream_error is not None
                buf = bytearray(rest)
                buf += more
                cut = buf.rfind(b"</event>")
                nl = buf.find(b"\n", cut) if cut >= 0 else -1
                if nl < 0 and not eof:
                    rest = bytes(buf)  # not one complete event yet: read more
                    continue
                if cut < 0:
                    rest = bytes(buf)
                    break
                end = len(buf) if nl < 0 else nl + 1
                rest = bytes(buf[end:])
                del buf[end:]
                buf += pad
                pb = parse_block(
                    buf, weight_prefixes=self._prefixes, line0=line0, path=self.path, size=end
                )
                yield pb, line0
                line0 += pb.n_lines
                n_done += len(pb.nup)
            # end of file (or of the readable stream): only the closing tag may remain
            i = rest.find(b"<event")
            why = "" if stream_error is None else f"; {_stream_problem(stream_error)}"
            if i >= 0:
                raise InputError(
                    f"truncated LHE file: no </LesHouchesEvents> (event {n_done + 1} incomplete: "
                    f"the file ends before its </event>{why})",
                    file=self.path,
                    field=f"line {line0 + rest[:i].count(NL)}",
                )
            if stream_error is not None or b"</LesHouchesEvents" not in rest:
                raise InputError(
                    f"truncated LHE file: no </LesHouchesEvents> (after event {n_done}{why})",
                    file=self.path,
                    field=f"line {line0 + rest.count(NL)}",
                )

    def _checked(self, pb: ParsedBlock, line0: int) -> _Raw:
        """The block's arrays, after the weight checks (NaN/inf, negative weights)."""
        lines = line0 + pb.event_lines
        weights = pb.weights
        bad = ~np.isfinite(weights)
        bad_x = ~np.isfinite(pb.info[:, 2])
        if bad.any() or bad_x.any():
            i = int(np.flatnonzero(bad.any(axis=1) | bad_x)[0])
            which = (
                "XWGTUP"
                if bad_x[i]
                else f"weight {self.weight_ids[int(np.flatnonzero(bad[i])[0])]!r}"
            )
            raise InputError(
                f"{which} is NaN or infinite", file=self.path, field=f"line {lines[i]} (event)"
            )
        if self.negative_weights != "allow":
            neg = (weights < 0).any(axis=1) | (pb.info[:, 2] < 0)
            if neg.any():
                i = int(np.flatnonzero(neg)[0])
                msg = f"{int(neg.sum())} events with negative weights, first"
                if self.negative_weights == "error":
                    raise InputError(
                        msg
                        + " here (pass negative_weights='allow' for samples where they are legitimate, e.g. NLO)",
                        file=self.path,
                        field=f"line {lines[i]} (event)",
                    )
                log.warning("%s: %s at line %d", self.path, msg, lines[i])
        return _Raw(pb.info, pb.particles, pb.nup, weights, lines)

    def _events(self, parts: list[_Raw], scale: float) -> LHEEvents:
        """One chunk from the parts: each column is gathered from them in one copy."""
        cols = {name: _join([p.info[:, k] for p in parts]) for k, name in enumerate(EVENT_COLUMNS)}
        cols["xwgtup"] = cols["xwgtup"] * scale
        cols.update(
            {
                name: _join([p.particles[:, k] for p in parts])
                for k, name in enumerate(PARTICLE_COLUMNS)
            }
        )
        weights = _join([p.weights for p in parts])
        return LHEEvents(
            **cols,
            offsets=np.r_[0, np.cumsum(_join([p.nup for p in parts]))],
            weights=weights * scale if scale != 1.0 else weights,
            weight_ids=tuple(self.weight_ids),
            event_lines=_join([p.lines for p in parts]),
        )

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[LHEEvents]:
        """Yield chunks of ``chunk_size`` events (default: the reader's)."""
        size = self.chunk_size if chunk_size is None else int(chunk_size)
        scale = self._scale()
        pending: list[_Raw] = []
        n_pending = 0
        self.n_events_read = 0
        for pb, line0 in self._blocks():
            raw = self._checked(pb, line0)
            if not raw.n:
                continue
            pending.append(raw)
            n_pending += raw.n
            while n_pending >= size:
                out, pending = _take(pending, size)
                n_pending -= size
                self.n_events_read += size
                yield self._events(out, scale)
        if n_pending:
            self.n_events_read += n_pending
            yield self._events(pending, scale)
        if self.event_norm == "average" and self.header.n_events not in (None, self.n_events_read):
            raise InputError(
                f"the header declares {self.header.n_events} events but the file holds {self.n_events_read}; "
                "weights normalised with event_norm = average would be wrong",
                file=self.path,
                field="MGGenerationInfo",
            )

    def read(self) -> LHEEvents:
        """All events as one chunk (for small files)."""
        chunks = list(self.iter_chunks(chunk_size=1 << 62))
        if not chunks:
            return LHEEvents.from_fixed(
                pid=np.zeros((0, 0)),
                px=0.0,
                py=0.0,
                pz=0.0,
                e=0.0,
                xwgtup=np.zeros(0),
                weights=np.zeros((0, len(self.weight_ids))),
                weight_ids=self.weight_ids,
            )
        return chunks[0]

    def benchmark_weights(self, events: LHEEvents) -> np.ndarray:
        """Weights of ``events`` in the order of ``benchmarks`` (shape (n, n_benchmarks))."""
        if self.benchmarks is None:
            raise InputError(
                "no benchmarks given to the reader", file=self.path, field="benchmarks"
            )
        idx = [events.weight_ids.index(b) for b in self.benchmarks]
        return events.weights[:, idx]

    def cross_sections(self) -> dict[str, float]:
        """Σ of every weight column over the file (pb), one pass."""
        total = np.zeros(len(self.weight_ids))
        for chunk in self.iter_chunks():
            total += chunk.weights.sum(axis=0)
        return dict(zip(self.weight_ids, total.tolist()))
