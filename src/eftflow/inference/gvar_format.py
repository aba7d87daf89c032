"""Text of Gaussian variables: ``mean(sdev)`` strings as gvar writes them.

:func:`format_gvar` is a port of ``gvar.GVar.__format__`` (gvar 13, default settings: no
``GVar.set(...)`` changes): the same format specifications (``'p'``, ``'#p'``, ``'P'``, ``'e'``,
``'f'``, ``'g'``, ``'n'``, ``'%'`` with fill, alignment, sign, width and grouping) and the same
strings, including when it switches to exponent notation (``1.234(50)e-07``,
``1.23457(12)e+07``) or to ``mean ± sdev`` (an error more than ``10**15`` times smaller than the
mean, or more than ``10**5`` times larger). :func:`fmt` and ``str(GVar)`` use gvar's default
``'#.2p'``: two significant digits in the error, and extra digits when the error is larger than
the mean so that one digit of the mean shows.

Non-finite values print as in gvar: ``inf ± 1``, ``1 ± inf``, ``nan ± 1.0``, ``1 ± nan`` (gvar
tests ``mean in [nan, inf]``, which only ``+inf`` passes, so ``-inf`` and ``nan`` follow the
general path: ``-inf ± 1.0``). A zero error prints ``1.5(0)``, a zero mean with a zero error
``0 ± 0``.

Where gvar formats an error larger than the mean in exponent notation (``-0.02(3.00)e-10``) or
a percentage, it rescales the GVar and recomputes its standard deviation,
``sqrt((var * c) * c)``; this module does the same from ``sdev**2``. For a primary variable that
is bit for bit gvar's value; for a derived one the variance itself may differ from gvar's in the
last bit (a different order of summation), and a string can then differ only where that bit
decides a rounding tie.

Examples
--------
>>> format_gvar(1.234e-7, 5e-9)
'1.234(50)e-07'
>>> format_gvar(12.3, 456.0, ".3p")
'12(456)'
>>> format_gvar(27.9315, 1.23, ".2g")
'28(1)'
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping

import numpy as np

__all__ = ["format_gvar", "fmt", "DEFAULT_FORMAT"]

DEFAULT_FORMAT = "#.2p"
"""gvar's default format specification (``GVar_default_format = '{:#.2p}'``)."""

_SPEC = re.compile(
    r"^(?P<align>[<>=^]?|.+[<>=^])(?P<sign>[-+ ]?)(?P<alt>[#]?)"
    r"(?P<width>\d*)(?P<grouping_opt>[,_]?)(?P<dot>[.]?)"
    r"(?P<precision>\d*)(?P<ftype>[efgpPn%]?)$"
)
_STRIP = str.maketrans("", "", "+- _,.")
_PM = " ± "
_SDEV = "({})"
_PRANGE = (1e-5, 10.0**sys.float_info.dig)


def _lstrip(sd: str, chrs: str = ".0,_") -> str:
    for i, c in enumerate(sd):
        if c not in chrs:
            return sd[i:]
    return "0"


def _join(mn: str, sd: str, expon: str = "0", alt: str = "") -> str:
    """Final assembly of ``mean(sdev)[e+xx]`` from the two digit strings (gvar's rules)."""
    if alt != "#" and mn[-1] == ".":
        mn = mn[:-1]
    if alt == "#" and "." not in mn:
        mn += "."
    if "e" in sd:
        sd, sexpon = sd.split("e")
        ndec = (0 if "." not in sd else (len(sd) - sd.find(".") - 1)) - int(sexpon)
        sd = f"{float(sd) * 10.0 ** int(sexpon):.{max(ndec, 0)}f}"
    if alt != "#" and sd[-1] == ".":
        sd = sd[:-1]
    if alt == "#" and mn[-1] == "." and sd[-1] != ".":
        sd += "."
    sd = _SDEV.format(_lstrip(sd))
    return (mn + sd) if expon == "0" else (mn + sd + "e" + expon)


def _scaled(sdev: float, c: float) -> float:
    """Standard deviation of ``c * x`` as gvar computes it: ``sqrt((var * c) * c)``."""
    return math.sqrt((sdev * sdev * c) * c)


def _split_e(s: str) -> tuple[str, str]:
    if "e" in s:
        a, b = s.split("e")
        return a, b
    return s, "0"


def _efgn(gmean: float, gsdev: float, sp: dict) -> str:
    """The ``'e'``, ``'f'``, ``'g'``, ``'n'`` formats for a finite mean and error > 0."""
    if sp["ftype"] in "gn":
        if sp["precision"] == "":
            sp["precision"], sp["dot"] = "6", "."
        # (gvar compares precision '0' with '1' here without effect)
    plain = sp["ftype"] in "gn"
    if gsdev > abs(gmean):
        sstr, expon = _split_e(format(gsdev, "#{grouping_opt}{dot}{precision}{ftype}".format(**sp)))
        if not plain:
            mspec = "{sign}{alt}{grouping_opt}{dot}{precision}f".format(**sp)
        else:  # the mean gets as many decimals as the error
            ndec = 0 if "." not in sstr else (len(sstr) - sstr.find(".") - 1)
            mspec = "{sign}{alt}{grouping_opt}".format(**sp) + f".{ndec}f"
        mstr = format(gmean * 10.0 ** (-int(expon)), mspec)
        return _join(mstr, sstr, expon=expon, alt=sp["alt"])
    mstr, expon = _split_e(
        format(gmean, "{sign}#{grouping_opt}{dot}{precision}{ftype}".format(**sp))
    )
    if not plain:
        sspec = "{alt}{grouping_opt}{dot}{precision}f".format(**sp)
    else:  # the error gets as many decimals as the mean
        if sp["alt"] == "" and mstr[-1] == ".":
            mstr = mstr[:-1]
        ndec = 0 if "." not in mstr else (len(mstr) - mstr.find(".") - 1)
        sspec = "{alt}{grouping_opt}".format(**sp) + f".{ndec}f"
    sstr = format(gsdev * 10.0 ** (-int(expon)), sspec)
    return _join(mstr, sstr, expon=expon, alt=sp["alt"])


def _p(gmean: float, gsdev: float, sp: dict) -> str:
    """The ``'p'``, ``'#p'`` and ``'P'`` formats (precision = digits of the error)."""
    if sp["precision"] == "":
        sp["precision"], sp["dot"] = "2", "."
    ratio = abs(gmean) / gsdev
    if sp["alt"] == "#" and _PRANGE[0] < ratio < 1 and sp["ftype"] != "P":
        # more digits in the error, so that one digit of the mean shows
        nprec = int(np.floor(np.log10(gsdev)) - np.floor(np.log10(abs(gmean)))) + 1
        sp["precision"] = str(max(nprec, int(sp["precision"])))
    if sp["ftype"] == "P" or not (_PRANGE[1] >= ratio >= _PRANGE[0]):
        # mean ± sdev when the magnitudes are far apart (or asked for)
        if sp["ftype"] == "P" and ratio > 1:
            ndig = min(
                sys.float_info.dig,
                int(np.floor(np.log10(abs(gmean))) - np.floor(np.log10(gsdev)))
                + int(sp["precision"]),
            )
            mspec = "{sign}{grouping_opt}".format(**sp) + f".{ndig}g"
        else:
            mspec = "{sign}{grouping_opt}g".format(**sp)
        sstr = format(gsdev, "#.{grouping_opt}{precision}g".format(**sp))
        if sstr[-1] == ".":
            sstr = sstr[:-1]
        if ".e" in sstr:
            sstr = "e".join(sstr.split(".e"))
        return format(gmean, mspec) + _PM + sstr
    sstr, expon = _split_e(format(gsdev, "#.{precision}g".format(**sp)))
    ndec = len(sstr) - sstr.find(".") - 1
    if abs(gmean) > gsdev:
        scale = 10.0 ** (-int(expon))
        mstr = f"{gmean * scale:.{ndec}f}"
        # the rounded values decide the digits and the exponent
        gmean = float(mstr) * 10.0 ** int(expon)
        gsdev = float(sstr) * 10.0 ** int(expon)
        ndig = len(mstr.split("e")[0].translate(_STRIP).lstrip("0"))
        mstr, expon = _split_e(format(gmean, "{sign}#{grouping_opt}".format(**sp) + f".{ndig}g"))
        sstr = format(gsdev * 10.0 ** (-int(expon)), "#.{precision}g".format(**sp))
        if mstr[-1] == ".":
            mstr = mstr[:-1]
        return _join(mstr, sstr, expon=expon)
    scale = 10.0 ** (-int(expon))
    if sp["alt"] == "#" and gmean != 0 and float(f"{gmean * scale:.{ndec}f}") == 0:
        ndec += 1
    ans = format_gvar(
        gmean * scale, _scaled(gsdev, scale), "{sign}{grouping_opt}".format(**sp) + f".{ndec}f"
    )
    return ans if expon == "0" else ans + "e" + expon


def format_gvar(mean: float, sdev: float, spec: str = "") -> str:
    """Text of a Gaussian variable ``mean ± sdev`` for the format specification ``spec``.

    Parameters
    ----------
    mean, sdev
        The mean and standard deviation (the sign of ``sdev`` is ignored).
    spec
        A format specification as for ``format(gvar.GVar, spec)``; ``''`` is gvar's default
        ``'#.2p'``.

    Returns
    -------
    str
        The same string as gvar 13 gives (see the module notes for the one rounding caveat).

    Raises
    ------
    ValueError
        For a specification gvar does not accept.
    """
    if spec == "":
        spec = DEFAULT_FORMAT
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"invalid format specifier: {spec}")
    sp = match.groupdict()
    if sp["ftype"] == "":
        sp["ftype"], sp["alt"] = "p", "#"
    gmean, gsdev = float(mean), abs(float(sdev))
    if gmean == math.inf and gsdev == math.inf:
        ans = str(gmean) + _PM + str(gsdev)
    elif gmean == math.inf:
        if sp["ftype"] in "pP":
            sp["ftype"], sp["alt"] = "g", ""
        ans = (
            str(gmean)
            + _PM
            + format(gsdev, "{sign}{grouping_opt}{dot}{precision}{ftype}".format(**sp))
        )
    elif gsdev == math.inf:
        if sp["ftype"] in "pP":
            sp.update(ftype="g", alt="", precision="", dot="")
        mstr = format(gmean, "{sign}{alt}{grouping_opt}{dot}{precision}{ftype}".format(**sp))
        ans = mstr + _PM + str(gsdev)
    elif gsdev <= 0 and gmean == 0 and sp["ftype"] in "pP":
        ans = "0 ± 0"
    elif gsdev <= 0 and sp["ftype"] == "P":
        ans = format(gmean, "{sign}{grouping_opt}g".format(**sp)) + _PM + "0"
    elif gsdev <= 0:
        if sp["ftype"] == "p":
            sp.update(ftype="g", alt="", precision="", dot="")
        mstr, expon = _split_e(
            format(gmean, "{sign}{alt}{grouping_opt}{dot}{precision}{ftype}".format(**sp))
        )
        ans = _join(mstr, "0", expon=expon, alt=sp["alt"])
    elif sp["ftype"] in "efgn":
        ans = _efgn(gmean, gsdev, sp)
    elif sp["ftype"] in "pP":
        ans = _p(gmean, gsdev, sp)
    else:  # '%'
        ans = format_gvar(
            gmean * 100, _scaled(gsdev, 100.0), "{sign}{grouping_opt}{dot}{precision}f".format(**sp)
        )
        ans += "%"
    return format(ans, "{align}{width}s".format(**sp))


def fmt(x, ndigits: int = 2):
    """``mean(sdev)`` with ``ndigits`` significant digits in the error, as gvar's ``fmt``.

    ``fmt(x)`` is ``str(x)`` and ``gvar.fmt(x)``; ``fmt(x, n)`` is ``format(x, f'#.{n}p')``.
    ``x`` is a GVar (anything with ``mean`` and ``sdev``), a plain number (zero error), an array or
    list of them (an array of strings of the same shape) or a mapping of those (a dict).

    >>> from eftflow.inference.uncertainties import gvar
    >>> fmt(gvar(135.2834, 0.3812)), fmt(gvar(12345678.0, 1234.0)), fmt(gvar(2.5, 1.5), 1)
    ('135.28(38)', '1.23457(12)e+07', '2(2)')
    """
    spec = f"#.{int(ndigits)}p"
    if isinstance(x, Mapping):
        return {k: fmt(v, ndigits) for k, v in x.items()}
    if hasattr(x, "mean") and hasattr(x, "sdev") and not isinstance(x, np.ndarray):
        return format_gvar(x.mean, x.sdev, spec)
    if isinstance(x, np.ndarray | list | tuple):
        arr = np.asarray(x, dtype=object)
        out = [fmt(v, ndigits) for v in arr.ravel().tolist()]
        return np.array(out, dtype=str).reshape(arr.shape)
    return format_gvar(float(x), 0.0, spec)
