"""Fixed-width decoding of numeric LHE lines: a layout learnt from one line, verified on every line.

A :class:`FixedLayout` is learnt from a sample line: where each number is, its kind (integer or
decimal with ``d`` digits before and after the point and an optional exponent) and which bytes
are separators. It then decodes an ``(m, width)`` ``uint8`` matrix of lines *of the same length*
with whole-array numpy operations and reports, per line, whether the line really follows the
layout (every digit a digit, every point, exponent marker, sign and separator where the layout
says). Lines that do not are left to the caller (another layout or the generic token parser).

How the numbers are decoded
    One pass over all bytes checks each against its allowed range (separators, points and
    exponent markers exactly as in the sample, digits ``0``–``9``, signs and integer fields only
    blanks, signs and digits). Then, for *all* fields of a line at once, the 64-bit words that
    hold their digits are gathered into one ``(m, k)`` matrix and turned into numbers eight
    digits at a time (SWAR: a mask and three multiply–shift steps; a decimal point inside a word
    is squeezed out first), so a number costs a few integer operations per line, whatever the
    number of fields.

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
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_INT = re.compile(rb"[+-]?\d+$")
_FLOAT = re.compile(rb"([+-]?)(\d+)\.(\d*)(?:([eE])([+-])(\d{1,3}))?$")
#: bytes read beyond a line by the word views (rows are gathered this much wider)
ROW_PAD = 16
#: rows are decoded in groups of this many (the caller pads the row count to a multiple)
ROW_BLOCK = 256

_U = np.uint64
_B0F = _U(0x0F0F0F0F0F0F0F0F)
_B10 = _U(0x1010101010101010)
_B05 = 0x0505050505050505
_B1D = 0x1D1D1D1D1D1D1D1D
_B04 = _U(0x0404040404040404)
_L1, _L2, _L3 = _U(2561), _U(6553601), _U(42949672960001)
_M1 = _U(0x00FF00FF00FF00FF)
_M2 = _U(0x0000FFFF0000FFFF)
_S8, _S16, _S32 = _U(8), _U(16), _U(32)
_LONG = np.finfo(np.longdouble).nmant >= 63  # x87 extended precision available
_SPACE, _PLUS, _MINUS = 32, 43, 45
#: exponent tables, one per field: index ``min(e, 127) + 128 * (exponent sign byte & 3)``
#: ('+' 3, '-' 1; the others are not signs); |q| > 27 is NaN anyway, so larger e are clipped
_EMAX = 127
_ETAB = 4 * (_EMAX + 1)
#: float sign bytes → factor (NaN: not a sign; the value is then re-checked with float())
_SIGN = np.full(256, np.nan)
_SIGN[[_SPACE, _PLUS, _MINUS]] = 1.0, 1.0, -1.0


def _digits8(x: np.ndarray) -> np.ndarray:
    """Eight digit values (0–9, first digit in the lowest byte) → their number, in place."""
    x *= _L1
    x >>= _S8
    x &= _M1
    x *= _L2
    x >>= _S16
    x &= _M2
    x *= _L3
    x >>= _S32
    return x


def _bytes_mask(lo: int, hi: int, byte: int = 0xFF) -> int:
    """A 64-bit word with ``byte`` in bytes ``lo`` to ``hi - 1`` (byte 0 = least significant)."""
    return sum(byte << (8 * b) for b in range(lo, hi))


def _word_at(end: int) -> tuple[int, int]:
    """Offset and left shift that put the bytes before ``end`` at the top of a 64-bit word."""
    return (end - 8, 0) if end >= 8 else (0, 8 * (8 - end))


def _exponents(nf: int) -> tuple[np.ndarray, np.ndarray]:
    """Net power of ten ``q`` of each exponent-table entry of a field with ``nf`` decimals, and
    whether the entry is a valid sign ('+' or '-')."""
    i = np.arange(_ETAB)
    code, e = i // (_EMAX + 1), i % (_EMAX + 1)
    return np.where(code == 3, e, -e) - nf, (code & 1) == 1


def _powers(q: np.ndarray, valid: np.ndarray, limit: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(mul, div)``: ``x * mul`` (``0 ≤ q ≤ limit``) and ``x / div`` (``-limit ≤ q ≤ 0``) are
    ``x × 10^q`` correctly rounded (10^|q| exact); NaN elsewhere and for invalid entries."""
    mul = np.full(q.shape, np.nan, dtype)
    div = np.full(q.shape, np.nan, dtype)
    pos = valid & (q >= 0) & (q <= limit)
    neg = valid & (q <= 0) & (q >= -limit)
    mul[pos] = [dtype(10**k) for k in q[pos].tolist()]
    div[neg] = [dtype(10**-k) for k in q[neg].tolist()]
    return mul, div


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
        # byte bounds per column: [lo, lo + span]; exact bytes have span 0
        lo = np.zeros(self.width, np.uint8)
        span = np.full(self.width, 255, np.uint8)
        sb = np.frombuffer(sample, np.uint8)
        lo[:n], span[:n] = sb, 0  # separators (blank in the sample), points, exponent markers
        self.fields: list[tuple] = []
        prev = 0
        for k, (s, e, t) in enumerate(toks):
            m = _FLOAT.match(t)
            if m is not None:
                sg, ip, fp, ech, _, ed = m.groups()
                ni, nf, ne = len(ip), len(fp), len(ed or b"")
                if ni + nf > (18 if _LONG else 15):
                    raise ValueError("too many digits")
                c = s + (1 if sg else 0)
                int_c, frac_c = c, c + ni + 1
                sign = s if sg else s - 1
                if sign < 0 or (k > 0 and sign == prev):
                    sign = -1  # no room for a sign: the byte before must stay a separator
                else:
                    lo[sign], span[sign] = _SPACE, _MINUS - _SPACE
                lo[int_c : int_c + ni], span[int_c : int_c + ni] = 48, 9
                lo[frac_c : frac_c + nf], span[frac_c : frac_c + nf] = 48, 9
                esign = exp_c = -1
                if ech:
                    esign, exp_c = frac_c + nf + 1, frac_c + nf + 2
                    lo[esign], span[esign] = _PLUS, _MINUS - _PLUS
                    lo[exp_c : exp_c + ne], span[exp_c : exp_c + ne] = 48, 9
                self.fields.append(("f", sign, int_c, ni, frac_c, nf, esign, exp_c, ne, s, e))
            elif _INT.match(t):
                first = prev + 1 if k > 0 else 0  # the byte right after a number: a separator
                if e - s > 8:
                    raise ValueError("integer too wide")
                first = max(first, e - 8)  # only the last 8 bytes may hold the number
                lo[first:e], span[first:e] = _SPACE, ord("9") - _SPACE  # blanks, signs, digits
                self.fields.append(("i", first, e))
            else:
                raise ValueError("not a number")
            prev = e
        self._lo, self._span = np.tile(lo, ROW_BLOCK), np.tile(span, ROW_BLOCK)
        self._plan_ints()
        self._plan_floats(lo[:n], span[:n])

    # --- plans: which words to gather and the per-column constants ----------------------------
    def _plan_ints(self) -> None:
        idx, off, sh, rm = [], [], [], []
        for k, f in enumerate(self.fields):
            if f[0] != "i":
                continue
            _, first, end = f
            o, s = _word_at(end)
            idx.append(k)
            off.append(o)
            sh.append(s)
            rm.append(_bytes_mask(8 - (end - first), 8))
        self._i_idx = np.array(idx, np.intp)
        self._i_off = np.array(off, np.intp)
        self._i_sh = np.array(sh, np.uint64) if any(sh) else None
        self._i_rm = np.array(rm, np.uint64)
        self._i_f4 = self._i_rm & _B10  # bit 4 of every byte of the field
        self._i_top4 = _U(0x10 << 56)

    def _plan_floats(self, lo: np.ndarray, span: np.ndarray) -> None:
        flo = [f for f in self.fields if f[0] == "f"]
        self._f_idx = np.array([k for k, f in enumerate(self.fields) if f[0] == "f"], np.intp)
        nfl = len(flo)
        if not nfl:
            return
        # the sign byte of each field; unsigned fields use a blank the layout fixes
        blank = (lo == _SPACE) & (span == 0)
        other = int(np.argmax(blank)) if blank.any() else -1
        sign_at = [
            f[1] if f[1] >= 0 else (f[9] - 1 if f[9] >= 1 and blank[f[9] - 1] else other)
            for f in flo
        ]
        # digit chunks of up to 8 bytes: (offset, shift, digit mask, below-the-point mask,
        # power of ten, end); the lead chunk (with the point, else the most significant) first
        chunks: list[list[tuple]] = []
        for f in flo:
            _, sign, int_c, ni, frac_c, nf, esign, exp_c, ne, s, e = f
            pos = list(range(int_c, int_c + ni)) + list(range(frac_c, frac_c + nf))
            dot = int_c + ni
            mine, below, i = [], 0, len(pos)
            while i > 0:  # least significant first
                end = pos[i - 1] + 1
                j = i
                while j > 0 and end - pos[j - 1] <= 8:
                    j -= 1
                o, sh = _word_at(end)
                base = end - 8  # row byte of byte 0 of the (shifted) word
                cm = sum(0x0F << (8 * (p - base)) for p in pos[j:i])
                low = _bytes_mask(0, dot - base) if pos[j] < dot < end else 0
                mine.append((o, sh, cm, low, 10**below, end))
                below += i - j
                i = j
            lead = next((c for c in mine if c[3]), mine[-1])
            chunks.append([lead] + [c for c in mine if c is not lead])
        nb = max(len(c) for c in chunks)
        dummy = (0, 0, 0, 0, 0, 0)
        cols = [c[b] if b < len(c) else dummy for b in range(nb) for c in chunks]
        ebyte, eforce = [], []
        for f in flo:
            exp_c, ne = f[7], f[8]
            if ne:
                o, sh = _word_at(exp_c + ne)
                cols.append((o, sh, _bytes_mask(8 - ne, 8, 0x0F), 0, 0, 0))
                ebyte.append(8 * (7 - ne))
                eforce.append(0)
            else:  # no exponent: e = 0 and a '+' sign
                cols.append(dummy)
                ebyte.append(0)
                eforce.append(3)
        self._nb = nb
        self._f_off = np.array([c[0] for c in cols], np.intp)
        sh = [c[1] for c in cols]
        self._f_sh = np.array(sh, np.uint64) if any(sh) else None
        self._f_cm = np.array([c[2] for c in cols], np.uint64)
        low = [c[0][3] for c in chunks]
        self._f_low = np.array(low, np.uint64) if any(low) else None
        self._f_pw = [np.array([c[4] for c in cols[b * nfl : (b + 1) * nfl]], np.uint64)
                      for b in range(nb)]  # fmt: skip
        self._f_pw1 = [bool((p <= 1).all()) for p in self._f_pw]  # (× 1: skipped)
        self._f_exp2 = all(f[8] <= 2 for f in flo)  # exponents of ≤ 2 digits: one multiply
        self._f_ebyte = np.array(ebyte, np.uint64)
        self._f_eforce = np.array(eforce, np.uint64)
        self._f_ebase = (np.arange(nfl) * _ETAB).astype(np.uint64)
        # sign bytes read from the lead words when each lies in its word, else from the rows
        shifts = [8 * (c - (ch[0][5] - 8)) for c, ch in zip(sign_at, chunks)]
        self._f_sshift = None
        if all(c >= 0 and 0 <= b < 64 for c, b in zip(sign_at, shifts)):
            self._f_sshift = np.array(shifts, np.uint64)
        long = [f[3] + f[5] > 15 for f in flo]
        tabs = [_exponents(f[5]) for f in flo]
        mul, div = zip(*(_powers(q, v, 22, np.float64) for q, v in tabs))
        for k in np.flatnonzero(long).tolist():  # (their values come from the tables below)
            mul[k][:] = np.nan
        self._f_mul, self._f_div = np.concatenate(mul), np.concatenate(div)
        self._f_long = np.flatnonzero(long)
        if self._f_long.size:  # (only with extended precision: else refused above)
            ml, dl = zip(*(_powers(*tabs[k], 27, np.longdouble) for k in self._f_long.tolist()))
            self._l_mul, self._l_div = np.concatenate(ml), np.concatenate(dl)
            self._l_base = (np.arange(self._f_long.size) * _ETAB).astype(np.uint64)
        self._f_signed = np.array([k for k, c in enumerate(sign_at) if c >= 0], np.intp)
        self._f_signcol = np.array([c for c in sign_at if c >= 0], np.intp)
        self._f_all_signed = self._f_signed.size == nfl
        self._f_tok = [(f[1] if f[1] >= 0 else f[9], f[10]) for f in flo]

    # --- decoding ----------------------------------------------------------------------------
    def decode(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rows``: ``(m, self.width)`` uint8, each a line of ``self.length`` bytes (then anything),
        with ``m`` a multiple of :data:`ROW_BLOCK`.

        Returns ``(values (m, n_fields) float64, ok (m,) bool)``; rows with ``ok`` False do not
        follow the layout and their values are meaningless.
        """
        m = rows.shape[0]
        blocks = rows.reshape(m // ROW_BLOCK, ROW_BLOCK * self.width)
        bad = (blocks - self._lo) > self._span  # one pass: separators, points, digits, signs
        ok = ~bad.reshape(m, self.width).any(axis=1) if bad.any() else np.ones(m, bool)
        words = np.ndarray((m, self.width - 7), "<u8", rows, strides=(self.width, 1))
        out = np.empty((m, len(self.fields)))
        if self._i_idx.size:
            vals, good = self._ints(words[:, self._i_off])
            ok &= good
            out[:, self._i_idx] = vals
        if self._f_idx.size:
            vals = self._floats(rows, words[:, self._f_off], ok)
            out[:, self._f_idx] = vals
        return out, ok

    def _ints(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Right-aligned integers, one per column of ``x`` (the word that ends with the field).

        Bytes are known to be blanks, signs, digits or ``!``–``/`` (the range check). Within a
        field: a byte after a non-blank must be a digit, the last byte a digit, and the only
        non-blank non-digit (at most one, by the first rule) ``+`` or ``-``.
        """
        if self._i_sh is not None:
            x <<= self._i_sh
        x &= self._i_rm
        d4 = x & _B10  # bit 4: a digit (bytes are ≤ '9')
        nib = x & _B0F
        nb = ((nib + _B0F) & _B10) | d4  # bit 4: not a blank
        bad = (((nb << _S8) | self._i_top4) & (d4 ^ self._i_f4)) != 0
        s4 = nb ^ d4  # bit 4: the sign byte
        sm = (s4 >> _U(4)) * _U(0x0F)
        t = nib & sm
        bad |= (((t + (sm & _U(_B05))) & _U(_B1D)) ^ s4) != 0  # '+' or '-' only
        ok = ~bad.any(axis=1)
        neg = ((t & _B04) != 0).view(np.uint8)  # '-' (0x2D) has bit 2, '+' (0x2B) not
        nib ^= t
        val = _digits8(nib).astype(np.float64)
        val.view(np.uint64)[...] |= neg.astype(np.uint64) << _U(63)  # the sign bit
        return val, ok

    def _floats(self, rows: np.ndarray, w: np.ndarray, ok: np.ndarray) -> np.ndarray:
        nfl = self._f_idx.size
        nb = self._nb
        if self._f_sh is not None:
            w <<= self._f_sh
        lead = w[:, :nfl]
        ew = w[:, nb * nfl :]
        sb = (ew >> self._f_ebyte) | self._f_eforce  # exponent sign byte: '+' 0x2B, '-' 0x2D
        sgn = None
        if self._f_sshift is not None:  # the sign bytes, from the lead words
            sbyte = lead >> self._f_sshift
            sbyte &= _U(0xFF)
            sgn = np.take(_SIGN, sbyte.view(np.intp))  # NaN: not a sign
        w &= self._f_cm
        if self._f_low is not None:  # squeeze out the decimal point
            low = lead & self._f_low
            lead ^= low
            low <<= _S8
            lead |= low
        if self._f_exp2:  # ≤ 2 exponent digits (the top bytes): one multiply–shift
            _digits8(w[:, : nb * nfl])
            ew *= _L1
            ew >>= _U(56)
        else:
            _digits8(w)
            np.minimum(ew, _U(_EMAX), out=ew)
        mant = lead if self._f_pw1[0] else lead * self._f_pw[0]
        for b in range(1, nb):
            part = w[:, b * nfl : (b + 1) * nfl]
            mant = mant + (part if self._f_pw1[b] else part * self._f_pw[b])
        sb &= _U(3)
        sb <<= _U(7)
        ew |= sb
        ew += self._f_ebase
        idx = ew.view(np.intp)
        val = mant.astype(np.float64)
        val /= np.take(self._f_div, idx)  # NaN: q > 0, big |q|, a bad exponent sign, long fields
        if self._f_long.size:
            lc = self._f_long
            ml = mant[:, lc].astype(np.longdouble)
            li = idx[:, lc] - (self._f_ebase[lc] - self._l_base).view(np.intp)
            vl = ml * np.take(self._l_mul, li) / np.take(self._l_div, li)
            v = vl.astype(np.float64)
            # exactly halfway between two doubles after the first rounding: may be off by one ulp
            frac, _ = np.frexp(vl)
            tail = np.fmod(np.ldexp(frac, 64), np.longdouble(2048))
            v[(tail == 1024) & (ml != 0)] = np.nan
            val[:, lc] = v
        if sgn is not None:
            val *= sgn
        elif self._f_signed.size:
            sgn = np.take(_SIGN, rows[:, self._f_signcol])  # NaN: not a sign
            if self._f_all_signed:
                val *= sgn
            else:
                val[:, self._f_signed] *= sgn
        nan = np.isnan(val)
        if nan.any():
            nan &= ok[:, None]
            i, k = np.nonzero(nan)
            # positive powers of ten: an exact product (NaN again where q is out of range)
            v = mant[i, k].astype(np.float64) * np.take(self._f_mul, idx[i, k])
            if sgn is not None:
                if self._f_all_signed:
                    v *= sgn[i, k]
                else:
                    pos = np.searchsorted(self._f_signed, k)
                    has = self._f_signed[np.minimum(pos, self._f_signed.size - 1)] == k
                    v[has] *= sgn[i[has], pos[has]]
            val[i, k] = v
            for i, k in zip(*np.nonzero(np.isnan(val) & nan)):  # rare: one by one
                a, b = self._f_tok[k]
                try:
                    val[i, k] = float(rows[i, a:b].tobytes())
                except ValueError:  # not a number after all: the row is off the layout
                    ok[i] = False
        return val


@functools.lru_cache(maxsize=256)
def _cached(shape: bytes, ncols: int) -> FixedLayout | None:
    try:
        return FixedLayout(shape, ncols)
    except ValueError:
        return None


def fixed_layout(sample: bytes, ncols: int) -> FixedLayout | None:
    """The (cached) layout of lines shaped like ``sample``, or ``None`` if it cannot have one."""
    return _cached(bytes(sample).translate(_ZEROS), ncols)
