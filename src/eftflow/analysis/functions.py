"""Functions callable from analysis expressions, and the registry to add your own.

Three kinds of functions exist:

``elementwise``
    numpy functions of per-event numbers (``sqrt``, ``cos``, ``abs``, ``arctan2``, ...). They also
    apply element by element to jagged values such as ``j.eta``.
``objects``
    functions of objects (``deltaR(j[0], j[1])``, ``mt(l[0], met)``). They receive
    :class:`ObjectView` arguments whose attributes (``.pt``, ``.eta``, ``.px``, ...) are numpy arrays
    with one entry per event.
``event``
    functions of the whole batch of events, called with no arguments (``my_fn()``). They receive the
    :class:`~eftflow.analysis.objects.EventObjects` and return one number per event (NaN where
    undefined: the observable's default is used there).

``min``/``max`` take several numbers (element-wise) or one jagged value (a reduction per event), and
``sum``, ``len``, ``any``, ``all``, ``mean`` reduce jagged values; the expression compiler handles those.

Register a vectorised Python callable with :func:`register_function`::

    @register_function("ht_ratio", kind="objects")
    def ht_ratio(a, b):
        return a.pt / (a.pt + b.pt)

Example
-------
>>> "deltaR" in FUNCTIONS and FUNCTIONS["sqrt"].kind
'elementwise'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eftflow.analysis import vectors as vec
from eftflow.errors import ConfigError
from eftflow.physics.expression import FUNCTIONS as UNARY_FUNCTIONS

__all__ = [
    "Function",
    "FUNCTIONS",
    "REDUCTIONS",
    "ObjectView",
    "register_function",
    "unregister_function",
]

log = logging.getLogger(__name__)

#: jagged reductions handled by the compiler (name → numpy ufunc or special)
REDUCTIONS = ("sum", "len", "any", "all", "mean", "min", "max")
KINDS = ("elementwise", "objects", "event")


@dataclass(frozen=True)
class Function:
    """A function usable in expressions."""

    name: str
    fn: Callable
    kind: str
    #: number of arguments: an int, or (min, max) with max None for any number
    n_args: int | tuple[int, int | None]
    doc: str = ""

    def accepts(self, n: int) -> bool:
        if isinstance(self.n_args, int):
            return n == self.n_args
        lo, hi = self.n_args
        return n >= lo and (hi is None or n <= hi)


FUNCTIONS: dict[str, Function] = {}


def register_function(
    name: str | None = None, *, kind: str = "elementwise", n_args=None, doc: str = ""
):
    """Decorator registering a vectorised callable under ``name`` (default: its ``__name__``).

    Parameters
    ----------
    name
        Identifier used in expressions; must not shadow a reduction or an existing function.
    kind
        ``"elementwise"`` (numpy arrays in, array out), ``"objects"`` (:class:`ObjectView` in,
        array out) or ``"event"`` (``EventObjects`` in, array out; called with no arguments).
    n_args
        Number of arguments (int or (min, max)); default: from the signature.
    """
    if kind not in KINDS:
        raise ConfigError(
            f"unknown function kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind"
        )

    def decorate(fn: Callable) -> Callable:
        import inspect

        key = name or fn.__name__
        if not key.isidentifier() or key.startswith("_"):
            raise ConfigError(
                f"function name {key!r} must be an identifier not starting with '_'", field="name"
            )
        if key in REDUCTIONS or key in FUNCTIONS:
            raise ConfigError(f"function {key!r} is already defined", field="name")
        nargs = n_args
        if nargs is None:
            nargs = 0 if kind == "event" else len(inspect.signature(fn).parameters)
        FUNCTIONS[key] = Function(
            key, fn, kind, nargs, doc or (fn.__doc__ or "").strip().split("\n")[0]
        )
        return fn

    return decorate


def unregister_function(name: str) -> None:
    """Remove a registered function (for tests and interactive sessions)."""
    FUNCTIONS.pop(name, None)


class ObjectView:
    """Per-event attributes of one object for ``objects`` functions: ``o.pt`` → array (n,)."""

    __slots__ = ("_get",)

    def __init__(self, get: Callable[[str], np.ndarray]):
        object.__setattr__(self, "_get", get)

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._get(name)

    def cartesian(self):
        return self.px, self.py, self.pz, self.e


_ELEMENTWISE = {
    **UNARY_FUNCTIONS,
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
}
for _name, _fn in _ELEMENTWISE.items():
    FUNCTIONS[_name] = Function(_name, _fn, "elementwise", 1, f"numpy.{_fn.__name__}")
FUNCTIONS["arctan2"] = Function("arctan2", np.arctan2, "elementwise", 2, "numpy.arctan2(y, x)")
FUNCTIONS["hypot"] = Function("hypot", np.hypot, "elementwise", 2, "numpy.hypot(x, y)")


@register_function("deltaR", kind="objects")
def delta_r(a: ObjectView, b: ObjectView) -> np.ndarray:
    """ΔR = √(Δη² + Δφ²) between two objects."""
    return vec.delta_r(a.eta, a.phi, b.eta, b.phi)


@register_function("deltaphi", kind="objects")
def delta_phi(a: ObjectView, b: ObjectView) -> np.ndarray:
    """|Δφ| in [0, π] between two objects."""
    return vec.delta_phi(a.phi, b.phi)


@register_function("deltaeta", kind="objects")
def delta_eta(a: ObjectView, b: ObjectView) -> np.ndarray:
    """|Δη| between two objects."""
    return np.abs(a.eta - b.eta)


@register_function("mt", kind="objects")
def transverse_mass(a: ObjectView, b: ObjectView) -> np.ndarray:
    """Transverse mass √(2 pT_a pT_b (1 − cos Δφ)), e.g. ``mt(l[0], met)``."""
    return vec.transverse_mass(a.pt, a.phi, b.pt, b.phi)


@register_function("cos_theta_cs", kind="objects")
def cos_theta_cs(a: ObjectView, b: ObjectView) -> np.ndarray:
    """Collins–Soper cos θ* of a lepton pair (the negatively charged one is found by charge)."""
    # exchanging the leptons flips the sign of cos θ* exactly: compute with a as ℓ⁻, then flip
    c = vec.cos_theta_collins_soper(a.cartesian(), b.cartesian())
    np.negative(c, out=c, where=a.charge > 0)
    return c
