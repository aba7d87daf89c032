"""Fixed-width decoding of numeric LHE lines: a layout learnt from one line, verified on every line.

A :class:`FixedLayout` is learnt from a sample line: where each number is, its kind (integer or
decimal with ``d`` digits before and after the point and an optional exponent) and which bytes
are separators. It then decodes an ``(m, width)`` ``uint8`` matrix of lines *of the same length*
with whole-array numpy operations and reports, per line, whether the line really follows the
layout (every digit a digit, every point, exponent marker, sign and separator where the layout
says). Lines that do not are left to the caller (another layout or the generic token parser).

Digits are combined eight at a time inside 64-bit words (SWAR: three multiply–shift–mask steps
turn eight ASCII digits into their value), so a number costs a few integer operations per row.
Results are **identical** to Python's ``float()``:

* up to 15 significant digits: the mantissa is exact in float64 and ``mantissa × 10^q`` (or
  ``/ 10^-q``) for ``|q| ≤ 22`` is one correctly rounded operation;
* 16 to 18 digits (e.g. ``%+.16e``, which round-trips float64): the product is formed in x87
  extended precision (64-bit significand; mantissa and ``10^|q|``, ``|q| ≤ 27``, are exact there)
  and rounded to float64. A double rounding can only err when the extended result is exactly
  halfway between two doubles; such values are detected and converted with ``float()``;
* anything else (larger exponents, platforms without extended precision) is converted with
  ``float()`` value by value, or the layout is refused.
"""

from __future__ import annotations

import functools
import re

import numpy as np

__all__ = ["FixedLayout", "fixed_layout", "ROW_PAD", "ROW_BLOCK"]

_TOKEN = re.compile(rb"\S+")
_DIGITS = re.compile(rb"\d")
_INT = re.compile(rb"[+-]?\d+$")
_FLOAT = re.compile(rb"([+-]?)(\d+)\.(\d*)(?:([eE])([+-])(\d{1,3}))?$")
#: bytes read beyond a line by the word views (rows are gathered this much wider)
ROW_PAD = 16
#: rows are decoded in groups of this many (the caller pads the row count to a multiple)
ROW_BLOCK = 256

_U = np.uint64
_B30 = _U(0x3030303030303030)
_BF0 = _U(0xF0F0F0F0F0F0F0F0)
_B0F = _U(0x0F0F0F0F0F0F0F0F)
_B06 = _U(0x0606060606060606)
_M1 = _U(0x00FF00FF00FF00FF)
_M2 = _U(0x0000FFFF0000FFFF)
_M3 = _U(0x00000000FFFFFFFF)
_B7F = _U(0x7F7F7F7F7F7F7F7F)
_B80 = _U(0x8080808080808080)
_B20 = _U(0x2020202020202020)
_B2B = _U(0x2B2B2B2B2B2B2B2B)
_B2D = _U(0x2D2D2D2D2D2D2D2D)
_LONG = np.finfo(np.longdouble).nmant >= 63  # x87 extended precision available
_P10 = np.array([10.0**k for k in range(23)])
_P10L = np.array([10**k for k in range(28)], dtype=np.longdouble) if _LONG else None
_SPACE, _PLUS, _MINUS = 32, 43, 45


def _swar8(v: np.ndarray) -> np.ndarray:
    """Eight digit values (0–9, first digit in the lowest byte) → their number (uint64)."""
    v = (v * _U(10) + (v >> _U(8))) & _M1
    v = (v * _U(100) + (v >> _U(16))) & _M2
    return (v * _U(10000) + (v >> _U(32))) & _M3


def _run(d: np.ndarray, col: int, n: int) -> np.ndarray:
    """Value (uint64) of the ``n`` digit bytes at ``d[:, col:col + n]`` (``d`` = bytes − 48)."""
    if n == 1:
        return d[:, col].astype(np.uint64)
    if n == 2:
        return d[:, col].astype(np.uint64) * _U(10) + d[:, col + 1]
    stride = d.strides[0]
    total = None
    for c0 in range(col, col + n, 8):
        k = min(8, col + n - c0)
        w = np.ndarray((d.shape[0],), "<u8", d, offset=c0, strides=(stride,))
        v = _swar8(w << _U(8 * (8 - k)))
        total = v if total is None else total * _U(10**k) + v
    return total


class FixedLayout:
    """The layout of one line; decodes lines of exactly the same length (see module docstring).

    Raises ``ValueError`` when the sample cannot serve as a layout (wrong number of fields, a
    token that is not a plain integer or decimal, too many digits).
    """

    def __init__(self, sample: bytes, ncols: int):
        toks = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(sample)]
        if len(toks) != ncols or not toks:
            raise ValueError("field count")
        self.length = n = len(sample)
        self.width = -(-n // 8) * 8 + ROW_PAD  # gathered row width: whole words + margin
        exact = np.zeros(n, bool)
        digit = np.zeros(n, bool)
        self.fields: list[tuple] = []
        prev = 0
        for k, (s, e, t) in enumerate(toks):
            exact[prev:s] = True  # separators (blank in the sample)
            m = _FLOAT.match(t)
            if m is not None:
                sg, ip, fp, ech, _, ed = m.groups()
                ni, nf, ne = len(ip), len(fp), len(ed or b"")
                if ni + nf > (18 if _LONG else 15):
                    raise ValueError("too many digits")
                c = s + (1 if sg else 0)
                int_c, dot, frac_c = c, c + ni, c + ni + 1
                sign = s if sg else s - 1
                if sign < 0 or (k > 0 and sign == prev):
                    sign = -1  # no room for a sign: the byte before must stay a separator
                else:
                    exact[sign] = False
                digit[int_c : int_c + ni] = True
                digit[frac_c : frac_c + nf] = True
                exact[dot] = True
                esign = exp_c = -1
                if ech:
                    exact[frac_c + nf] = True  # e or E, as in the sample
                    esign, exp_c = frac_c + nf + 1, frac_c + nf + 2
                    digit[exp_c : exp_c + ne] = True
                self.fields.append(("f", sign, int_c, ni, frac_c, nf, esign, exp_c, ne, s, e))
            elif _INT.match(t):
                lo = prev + 1 if k > 0 else 0  # the byte right after a number stays a separator
                if e - s > 8:
                    raise ValueError("integer too wide")
                exact[lo:e] = False
                if e - lo > 8:  # only the last 8 bytes may hold the number
                    exact[lo : e - 8] = True
                    lo = e - 8
                self.fields.append(("i", lo, e))
            else:
                raise ValueError("not a number")
            prev = e
        exact[prev:n] = True  # trailing blanks
        # byte bounds per column: exact bytes [b, b], digits [48, 57], others [0, 255]
        lo = np.zeros(self.width, np.uint8)
        span = np.full(self.width, 255, np.uint8)
        sb = np.frombuffer(sample, np.uint8)
        lo[:n][exact], span[:n][exact] = sb[exact], 0
        lo[:n][digit], span[:n][digit] = 48, 9
        self._lo, self._span = np.tile(lo, ROW_BLOCK), np.tile(span, ROW_BLOCK)

    def decode(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rows``: ``(m, self.width)`` uint8, each a line of ``self.length`` bytes (then anything),
        with ``m`` a multiple of :data:`ROW_BLOCK`.

        Returns ``(values (m, n_fields) float64, ok (m,) bool)``; rows with ``ok`` False do not
        follow the layout and their values are meaningless.
        """
        m = rows.shape[0]
        blocks = rows.reshape(m // ROW_BLOCK, ROW_BLOCK * self.width)
        bad = (blocks - self._lo) > self._span  # one pass: separators, points, digits
        ok = ~bad.reshape(m, self.width).any(axis=1) if bad.any() else np.ones(m, bool)
        d = rows - np.uint8(48)
        out = np.empty((m, len(self.fields)))
        for k, f in enumerate(self.fields):
            if f[0] == "i":
                ok &= self._int(rows, f[1], f[2], out[:, k])
            else:
                ok &= self._float(rows, d, f, out[:, k])
        return out, ok

    # --- fields ----------------------------------------------------------------------------
    @staticmethod
    def _int(rows: np.ndarray, lo: int, hi: int, out: np.ndarray) -> np.ndarray:
        """Right-aligned integer in ``[lo, hi)`` (≤ 8 bytes): blanks, an optional sign, digits.

        The bytes are read as one word, shifted so that the field's last byte is the top byte;
        every check and the value are then a few word operations per row.
        """
        base = max(hi - 8, 0)
        w = np.ndarray((rows.shape[0],), "<u8", rows, offset=base, strides=(rows.strides[0],))
        x = w << _U(8 * (8 - (hi - base)))
        rm = _U(((1 << (8 * (hi - lo))) - 1) << (8 * (8 - (hi - lo))))  # the field's bytes
        nd = ((x & _BF0) ^ _B30) | (((x & _B0F) + _B06) & _BF0)  # byte ≠ 0: not a digit
        flag = (((nd & _B7F) + _B7F) | nd) & _B80
        g = (flag >> _U(7)) * _U(0xFF) | ~rm  # not a digit, or outside the field
        top = g ^ (g >> _U(8))  # the last non-digit byte (where a sign may be)
        t = top & rm
        xt = x & t
        neg = xt == (_B2D & t)
        ok = ((g & (g + _U(1))) == 0) & ((g >> _U(56)) == 0)  # digits run to the end, ≥ 1
        ok &= ((x ^ _B20) & (g & ~top & rm)) == 0  # other non-digits are blanks
        ok &= neg | (xt == (_B20 & t)) | (xt == (_B2B & t))
        val = _swar8(x & _B0F & ~g).astype(np.float64)
        np.negative(val, out=val, where=neg & (t != 0))
        out[:] = val
        return ok

    @staticmethod
    def _float(rows, d, f, out) -> np.ndarray:
        _, sign, int_c, ni, frac_c, nf, esign, exp_c, ne, s, e = f
        ok = np.ones(rows.shape[0], bool)
        mant = _run(d, int_c, ni) if ni else None
        if nf:
            fr = _run(d, frac_c, nf)
            mant = fr if mant is None else mant * _U(10**nf) + fr
        q = np.full(rows.shape[0], -nf, np.int64)
        if ne:
            c = rows[:, esign]
            eneg = c == _MINUS
            ok &= eneg | (c == _PLUS)
            ex = _run(d, exp_c, ne).astype(np.int64)
            q += np.where(eneg, -ex, ex)
        if ni + nf <= 15:
            val = mant.astype(np.float64)
            big = np.abs(q) > 22
            qi = np.clip(q, -22, 22)
            val *= _P10[np.maximum(qi, 0)]
            val /= _P10[np.maximum(-qi, 0)]
        else:
            ml = mant.astype(np.longdouble)
            big = np.abs(q) > 27
            qi = np.clip(q, -27, 27)
            vl = ml * _P10L[np.maximum(qi, 0)] / _P10L[np.maximum(-qi, 0)]
            val = vl.astype(np.float64)
            # exactly halfway between two doubles after the first rounding: may be off by one ulp
            frac, _ = np.frexp(vl)
            tail = np.fmod(np.ldexp(frac, 64), np.longdouble(2048))
            big |= (tail == 1024) & (ml != 0)
        big &= mant != 0
        if big.any():  # rare: convert these values exactly, one by one
            for i in np.flatnonzero(big & ok).tolist():
                try:
                    val[i] = abs(float(rows[i, s:e].tobytes()))
                except ValueError:  # not a number after all: the row is off the layout
                    ok[i] = False
        if sign >= 0:
            c = rows[:, sign]
            neg = c == _MINUS
            ok &= neg | (c == _PLUS) | (c == _SPACE)
            np.negative(val, out=val, where=neg)
        out[:] = val
        return ok


@functools.lru_cache(maxsize=256)
def _cached(shape: bytes, ncols: int) -> FixedLayout | None:
    try:
        return FixedLayout(shape, ncols)
    except ValueError:
        return None


def fixed_layout(sample: bytes, ncols: int) -> FixedLayout | None:
    """The (cached) layout of lines shaped like ``sample``, or ``None`` if it cannot have one."""
    return _cached(_DIGITS.sub(b"0", bytes(sample)), ncols)
