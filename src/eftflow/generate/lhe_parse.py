"""Vectorised decoding of a block of complete ``<event>`` records into columnar arrays.

The block is scanned as a ``uint8`` array: line boundaries, the first non-blank character of each
line, the ``<event>``/``</event>``/``<wgt>`` tags and the particle lines are found with whole-array
numpy operations, never with a Python loop over events.

Numbers are decoded by one of two paths:

* **fixed-width fast path** (:mod:`eftflow.generate.lhe_fixed`) — rows of one kind (event lines,
  particle lines, ``<wgt>`` values) are taken by line length; a column layout is learnt from one
  row of each length and *verified on every row* (every digit a digit, every point, exponent
  marker, sign and separator where the layout says). Rows that fit are decoded with whole-array
  integer arithmetic, giving exactly the values ``float()`` gives. MadGraph's and eftflow's
  writers produce such files (the last column changes width with the sign of the helicity:
  two lengths, two layouts).
* **generic path** — rows no layout fits (irregular spacing, more than 18 significant digits,
  numbers without a point, …) are split into tokens and converted with numpy; slower but
  accepts any spacing. The two paths give identical arrays.

Any line that fits neither raises :class:`~eftflow.errors.InputError` with its line number.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError
from eftflow.generate.lhe_fixed import ROW_BLOCK, fixed_layout

__all__ = ["parse_block", "ParsedBlock", "parse_rows"]

_SPACE, _LT = 32, 60
#: blank bytes a block must have after its end (fixed-width rows are read this far)
_PAD = 1024
_MAX_LAYOUTS = 6
_WGT_END = int.from_bytes(b"</wgt>", "little")


@dataclass
class ParsedBlock:
    """Decoded events of one block (arrays) and the 0-based line index of each ``<event>``."""

    info: np.ndarray  # (n, 6)
    particles: np.ndarray  # (n_particles, 13)
    nup: np.ndarray  # (n,)
    weights: np.ndarray  # (n, n_weights)
    event_lines: np.ndarray  # (n,) line index (0-based, relative to the block) of <event>
    n_lines: int
    fast: bool


def _rows(a: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """(m, width) copy of ``a[s:s + width]`` for each start (one memcpy per row)."""
    n = a.shape[0] - width + 1
    win = np.ndarray((n,), np.dtype((np.void, width)), a, strides=(1,))  # overlapping windows
    return win[starts].view(np.uint8).reshape(-1, width)


# --------------------------------------------------------------------------------------------
# generic numbers and diagnostics
# --------------------------------------------------------------------------------------------
def _diagnose(buf: bytes, rs, re_, ncols: int, line_numbers, path, what: str):
    for s, e, ln in zip(rs.tolist(), re_.tolist(), line_numbers.tolist()):
        toks = buf[s:e].split()
        if len(toks) != ncols:
            raise InputError(
                f"{what} must have {ncols} numbers, found {len(toks)}: {buf[s:e][:100].decode(errors='replace')!r}",
                file=path,
                field=f"line {ln}",
            )
        for t in toks:
            try:
                float(t)
            except ValueError:
                raise InputError(
                    f"{what}: {t.decode(errors='replace')!r} is not a number",
                    file=path,
                    field=f"line {ln}",
                ) from None
    raise InputError(f"{what}: could not decode", file=path, field=f"line {int(line_numbers[0])}")


def _parse_fixed(a: np.ndarray, buf, rs: np.ndarray, re_: np.ndarray, ncols: int, out):
    """Decode what the fixed-width layouts can into ``out``; returns the rows left over.

    Rows are taken by length: the first row not yet decoded gives a layout, every row of its
    length is decoded with it, the rows that fit are done; repeated for a few layouts.
    """
    lens = re_ - rs
    todo = np.arange(rs.shape[0])
    for _ in range(_MAX_LAYOUTS):
        if not todo.size:
            break
        r0 = int(todo[0])
        lay = fixed_layout(buf[int(rs[r0]) : int(re_[r0])], ncols)
        if lay is None or lay.width >= _PAD:
            break
        same = lens[todo] == lens[r0]
        sel = todo[same] if not same.all() else todo
        k = sel.shape[0]
        starts = rs[sel]
        pad = -k % ROW_BLOCK
        if pad:
            starts = np.concatenate([starts, np.full(pad, starts[0])])
        vals, ok = lay.decode(_rows(a, starts, lay.width))
        if not ok[0]:  # pragma: no cover - a layout always fits its own sample
            break
        if ok[:k].all():
            out[sel] = vals[:k]
            todo = todo[~same] if not same.all() else todo[:0]
        else:
            good = ok[:k]
            out[sel[good]] = vals[:k][good]
            done = np.zeros(rs.shape[0], bool)
            done[sel[good]] = True
            todo = todo[~done[todo]]
    return todo


def parse_rows(buf, a: np.ndarray, rs, re_, ncols: int, line_numbers, path, what: str):
    """Decode rows ``buf[rs[i]:re_[i]]`` of ``ncols`` numbers each → (m, ncols), fast if possible.

    Returns ``(values, fast)``; ``fast`` is False when some rows needed the generic parser.
    """
    m = rs.shape[0]
    out = np.empty((m, ncols))
    if m == 0:
        return out, True
    todo = _parse_fixed(a, buf, rs, re_, ncols, out)
    if not todo.size:
        return out, True
    rs, re_, line_numbers = rs[todo], re_[todo], line_numbers[todo]
    toks = b"\n".join([buf[s:e] for s, e in zip(rs.tolist(), re_.tolist())]).split()
    if len(toks) != todo.size * ncols:
        _diagnose(buf, rs, re_, ncols, line_numbers, path, what)
    try:
        vals = np.array(toks, dtype=np.float64)
    except ValueError:
        _diagnose(buf, rs, re_, ncols, line_numbers, path, what)
    out[todo] = vals.reshape(-1, ncols)
    return out, False


# --------------------------------------------------------------------------------------------
# the block
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _prefix_words(prefixes: tuple[bytes, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The weight-id prefixes as little-endian 64-bit words: (expected, mask), each
    (n_weights, n_words); bytes beyond a prefix are masked out."""
    nwords = max(-(-len(p) // 8) for p in prefixes)
    expect = np.zeros((len(prefixes), nwords), np.uint64)
    mask = np.zeros((len(prefixes), nwords), np.uint64)
    for k, p in enumerate(prefixes):
        for j in range(-(-len(p) // 8)):
            piece = p[8 * j : 8 * j + 8]
            expect[k, j] = int.from_bytes(piece.ljust(8, b"\0"), "little")
            mask[k, j] = (1 << (8 * len(piece))) - 1
    return expect, mask


def _tag_match(words: np.ndarray, pattern: bytes, follow: bytes) -> np.ndarray:
    """Which 8-byte words (the bytes after ``<`` of tag lines, little-endian) start with
    ``pattern`` followed by one of the bytes in ``follow``."""
    k = len(pattern)
    mask = np.uint64((1 << (8 * k)) - 1)
    ok = (words & mask) == np.uint64(int.from_bytes(pattern, "little"))
    nxt = (words >> np.uint64(8 * k)) & np.uint64(0xFF)
    good = nxt == follow[0]
    for v in follow[1:]:
        good |= nxt == v
    return ok & good


def parse_block(
    buf: bytes | bytearray,
    *,
    weight_prefixes: list[bytes] | None,
    line0: int,
    path=None,
    size: int | None = None,
) -> ParsedBlock:
    """Decode every ``<event>`` in ``buf`` (which holds only complete events).

    ``weight_prefixes`` are the expected ``<wgt id='...'>`` texts (up to and including ``>``) in
    order, one per weight; ``None`` when the file declares no weights. ``line0`` is the 1-based
    line number of the first line of ``buf`` in the file (for messages). With ``size``, the
    block is ``buf[:size]`` and ``buf`` already holds at least ``_PAD`` blank bytes after it
    (saves a copy); otherwise the whole of ``buf`` is the block.
    """
    if size is None or len(buf) < size + _PAD:
        size = len(buf) if size is None else size
        buf = bytes(buf[:size]) + b" " * _PAD
    a = np.frombuffer(buf, np.uint8)  # padded: fixed-width windows never overrun
    words = np.ndarray((a.shape[0] - 7,), "<u8", a, strides=(1,))  # the 8 bytes from each byte
    nl = np.flatnonzero(a[:size] == 10)
    n_lines = nl.shape[0]
    if size and buf[size - 1] != 10:
        nl = np.r_[nl, size]
    starts = np.r_[0, nl[:-1] + 1]
    ends = nl.copy()
    if buf.find(b"\r", 0, size) >= 0:
        cr = ends > starts
        cr[cr] = a[ends[cr] - 1] == 13
        ends[cr] -= 1
    # first non-blank byte of each line: lines starting with a blank look at their first 32
    # bytes, then (rarely) further one byte at a time
    pos = starts.copy()
    c = np.where(starts < ends, a[starts], np.uint8(10))
    blank = np.flatnonzero((c == _SPACE) | (c == 9))
    if blank.size:
        win = _rows(a, starts[blank], 32)
        nb = (win != _SPACE) & (win != 9)
        p = starts[blank] + nb.argmax(axis=1)
        pos[blank] = p
        cb = np.where(p < ends[blank], a[p], np.uint8(10))
        c[blank] = cb
        todo = blank[(cb == _SPACE) | (cb == 9)]  # 32 blanks (argmax found none): go on
        while todo.size:
            pos[todo] += 1
            c[todo] = np.where(pos[todo] < ends[todo], a[pos[todo]], np.uint8(10))
            todo = todo[(c[todo] == _SPACE) | (c[todo] == 9)]
    is_tag = c == _LT
    numeric = ~is_tag & (c != 35) & (c != 10)
    tag_idx = np.flatnonzero(is_tag)
    tpos = pos[tag_idx]
    twin = words[tpos + 1]
    opens = tag_idx[_tag_match(twin, b"event", b"> \t\r\n")]
    closes = tag_idx[_tag_match(twin, b"/event", b"> \t\r\n")]

    def where(line_index: int) -> str:
        return f"line {line0 + int(line_index)}"

    n = opens.shape[0]
    if closes.shape[0] != n or (
        n and ((opens >= closes).any() or (closes[:-1] >= opens[1:]).any())
    ):
        events_marks = np.sort(np.r_[opens, closes])
        kinds = np.isin(events_marks, opens)
        bad = np.flatnonzero(kinds[:-1] == kinds[1:]) if events_marks.size > 1 else np.zeros(0, int)
        at = (
            events_marks[bad[0] + 1] if bad.size else (events_marks[-1] if events_marks.size else 0)
        )
        raise InputError(
            "<event> and </event> tags do not alternate (malformed or truncated event)",
            file=path,
            field=where(at),
        )
    # the event line and the particle lines: the run of numeric lines right after <event>
    non_num = np.flatnonzero(~numeric)
    run_end = non_num[np.searchsorted(non_num, opens + 1)]
    n_num = run_end - opens - 1
    if n and n_num.min() < 1:
        i = int(np.flatnonzero(n_num < 1)[0])
        raise InputError(
            "event has no event-information line after <event>",
            file=path,
            field=where(opens[i] + 1),
        )
    nup = n_num - 1
    info_rows = opens + 1
    info, fast_i = parse_rows(
        buf,
        a,
        starts[info_rows],
        ends[info_rows],
        6,
        line0 + info_rows,
        path,
        "event line (NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP)",
    )
    if n and not np.array_equal(info[:, 0], nup):
        i = int(np.flatnonzero(info[:, 0] != nup)[0])
        raise InputError(
            f"event declares NUP = {info[i, 0]:g} particles but has {nup[i]} particle lines",
            file=path,
            field=where(info_rows[i]),
        )
    offsets = np.r_[0, np.cumsum(nup)]
    ev_of = np.repeat(np.arange(n), nup)
    p_rows = info_rows[ev_of] + 1 + (np.arange(offsets[-1]) - offsets[ev_of])
    particles, fast_p = parse_rows(
        buf, a, starts[p_rows], ends[p_rows], 13, line0 + p_rows, path, "particle line"
    )

    # weights
    nw = 0 if weight_prefixes is None else len(weight_prefixes)
    weights = np.zeros((n, nw))
    fast_w = True
    wl = tag_idx[_tag_match(twin, b"wgt", b" \t>")]
    if nw == 0:
        if wl.size:
            raise InputError(
                "event has <wgt> weights but the header declares none (<initrwgt>)",
                file=path,
                field=where(wl[0]),
            )
    elif n:
        ev_w = np.searchsorted(opens, wl, side="right") - 1
        inside = (ev_w >= 0) & (wl < closes[np.maximum(ev_w, 0)])
        wl, ev_w = wl[inside], ev_w[inside]
        counts = np.bincount(ev_w, minlength=n)
        if (counts != nw).any():
            i = int(np.flatnonzero(counts != nw)[0])
            raise InputError(
                f"event has {counts[i]} <wgt> weights, the header declares {nw}",
                file=path,
                field=where(opens[i]),
            )
        wstart = pos[wl]
        plen = np.array([len(p) for p in weight_prefixes])
        # every event's weight ids, byte for byte, in the header's order: 8 bytes at a time
        expect, mask = _prefix_words(tuple(weight_prefixes))
        nwords = expect.shape[1]
        got = _rows(a, wstart, 8 * nwords).view("<u8").reshape(n, nw, nwords)
        got ^= expect
        got &= mask
        diff = got[:, :, 0]
        for j in range(1, nwords):
            diff |= got[:, :, j]
        bad = diff.ravel() != 0
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            s, e = int(starts[wl[k]]), int(ends[wl[k]])
            raise InputError(
                f"weight {k % nw + 1} of this event is {buf[s:e].decode(errors='replace').strip()!r}, "
                f"expected the id declared in <initrwgt>: "
                f"{weight_prefixes[k % nw].decode(errors='replace')!r}",
                file=path,
                field=where(wl[k]),
            )
        vstart = wstart + np.tile(plen, n)
        vend = np.maximum(ends[wl] - 6, 0)  # the value runs to "</wgt>" at the end of the line
        tail = words[vend] & np.uint64((1 << 48) - 1)
        odd = np.flatnonzero((tail != _WGT_END) | (vend < vstart))
        for k in odd.tolist():  # another layout: up to the next "<"
            lt = buf.find(b"<", int(vstart[k]), size)
            vend[k] = size if lt < 0 else lt
        vals, fast_w = parse_rows(buf, a, vstart, vend, 1, line0 + wl, path, "<wgt> value")
        weights = vals.reshape(n, nw)
    return ParsedBlock(
        info=info,
        particles=particles,
        nup=nup,
        weights=weights,
        event_lines=opens,
        n_lines=n_lines,
        fast=bool(fast_i and fast_p and fast_w),
    )
