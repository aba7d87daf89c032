"""Runtime values of the expression evaluator: per-event numbers, jagged lists, objects, the context.

:class:`Val` holds one number per event with a validity mask (missing objects, undefined
arithmetic), :class:`Jag` a list per event (flat data + offsets), :class:`Obj` one object per
event whose attributes are computed lazily; :class:`EvalContext` carries a batch of events and the
values of earlier observables, and caches gathered objects within one evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from eftflow.analysis.objects import EventObjects
from eftflow.analysis.vectors import (
    energy_from_mass,
    eta_from_cartesian,
    mass_from_cartesian,
    mass_from_energy,
)

__all__ = [
    "Val",
    "Jag",
    "Obj",
    "EvalContext",
    "cartesian_object",
    "derived_field",
    "fields_getter",
    "both_valid",
]


class Val:
    """Per-event numbers: ``data`` (array or scalar) and ``valid`` (bool array, or None = all)."""

    __slots__ = ("data", "valid")

    def __init__(self, data, valid=None):
        self.data = data
        self.valid = valid


class Jag:
    """Jagged values of one collection: flat ``data`` with the collection's ``offsets``."""

    __slots__ = ("offsets", "data", "valid")

    def __init__(self, offsets, data, valid=None):
        self.offsets, self.data, self.valid = offsets, data, valid

    def counts(self):
        return np.diff(self.offsets)


class Obj:
    """One object per event: ``get(field)`` → array, ``valid`` (None = exists in every event)."""

    __slots__ = ("get", "valid")

    def __init__(self, get, valid):
        self.get, self.valid = get, valid


def both_valid(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def derived_field(get: Callable[[str], np.ndarray], name: str) -> np.ndarray:
    """Fields computed from (pt, eta, phi, m/e)."""
    # one temporary each: the trigonometric result is scaled in place
    if name == "px":
        out = np.cos(get("phi"))
    elif name == "py":
        out = np.sin(get("phi"))
    elif name == "pz":
        out = np.sinh(get("eta"))
    elif name == "p":
        out = np.cosh(get("eta"))
    else:
        out = None
    if out is not None:
        out *= get("pt")
        return out
    if name == "theta":
        return 2.0 * np.arctan(np.exp(-get("eta")))
    if name == "et":
        return get("e") / np.cosh(get("eta"))
    if name == "mt":
        pz = get("pz")
        return np.sqrt(np.maximum(get("e") ** 2 - pz * pz, 0.0))
    if name == "y":
        e, pz = get("e"), get("pz")
        with np.errstate(divide="ignore", invalid="ignore"):
            return 0.5 * np.log((e + pz) / (e - pz))
    if name == "e":
        return energy_from_mass(get("pt"), get("eta"), get("m"))
    if name == "m":
        return mass_from_energy(get("pt"), get("eta"), get("e"))
    if name == "charge":
        return np.zeros_like(get("pt"))
    raise KeyError(name)


def fields_getter(stored: Mapping[str, np.ndarray], cache: dict) -> Callable[[str], np.ndarray]:
    def get(name):
        if name in stored:
            return stored[name]
        if name not in cache:
            cache[name] = derived_field(get, name)
        return cache[name]

    return get


class EvalContext:
    """What an expression is evaluated on: the events and the values of earlier observables.

    Everything derived from the events (object counts, gathered leading objects, four-vector
    components of whole collections, sums of collections) is computed once per context and
    shared by every expression evaluated on it, so common sub-expressions such as ``l[0].px`` or
    ``visible`` cost nothing the second time.
    """

    def __init__(self, objects: EventObjects, values: Mapping[str, Val] | None = None):
        self.objects = objects
        self.n = objects.n_events
        self.values = dict(values or {})
        self.cache: dict = {}

    def counts(self, coll: str) -> np.ndarray:
        """Objects per event of ``coll`` (cached)."""
        key = ("counts", coll)
        out = self.cache.get(key)
        if out is None:
            out = self.cache[key] = np.diff(self.objects[coll].offsets)
        return out

    def event_index(self, coll: str) -> np.ndarray:
        """Event number of every object of ``coll`` (cached)."""
        key = ("evt", coll)
        out = self.cache.get(key)
        if out is None:
            out = self.cache[key] = np.repeat(np.arange(self.n), self.counts(coll))
        return out

    def collection_field(self, coll: str) -> Callable[[str], np.ndarray]:
        """``get(field)`` → flat array over all objects of ``coll``, derived fields cached."""
        key = ("getter", coll)
        get = self.cache.get(key)
        if get is None:
            c = self.objects[coll]
            get = self.cache[key] = fields_getter(
                c.fields, self.cache.setdefault(("derived", coll), {})
            )
        return get

    def element(self, coll: str, index: int) -> Obj:
        key = ("obj", coll, index)
        if key in self.cache:
            return self.cache[key]
        c = self.objects[coll]
        counts = self.counts(coll)
        if index >= 0:
            valid = counts > index
            idx = c.offsets[:-1] + index
        else:
            valid = counts >= -index
            idx = c.offsets[1:] + index
        all_valid = bool(valid.all())
        if c.n_objects == 0:
            idx = None
        elif not all_valid:
            # missing objects read object 0 (any valid index); their values are masked
            np.copyto(idx, 0, where=~valid)
        stored, derived = {}, {}
        fields = c.fields
        n = self.n

        def get(name):
            if name in fields:
                out = stored.get(name)
                if out is None:
                    out = stored[name] = np.zeros(n) if idx is None else fields[name].take(idx)
                return out
            out = derived.get(name)
            if out is None:
                out = derived[name] = derived_field(get, name)
            return out

        obj = Obj(get, None if all_valid else valid)
        self.cache[key] = obj
        return obj

    def sum_object(self, colls: Iterable[str]) -> Obj:
        """The four-vector sum of all objects of ``colls`` per event (components summed lazily)."""
        colls = tuple(colls)
        key = ("sum", colls)
        if key in self.cache:
            return self.cache[key]
        n = self.n

        def component(name):
            total = np.zeros(n)
            for c in colls:
                if self.objects[c].n_objects:
                    total += np.bincount(
                        self.event_index(c), weights=self.collection_field(c)(name), minlength=n
                    )
            return total

        obj = cartesian_object(component, None)
        self.cache[key] = obj
        return obj


CARTESIAN = ("px", "py", "pz", "e", "charge")


def cartesian_object(component: Callable[[str], np.ndarray], valid) -> Obj:
    """An object given by its Cartesian components, each computed on first use.

    ``component(name)`` returns px, py, pz, e or charge (one array per event). Other attributes
    are derived from them, each only when asked for (``.m`` needs no η or φ).
    """
    cache: dict = {}

    def get(name):
        out = cache.get(name)
        if out is not None:
            return out
        if name in CARTESIAN:
            out = component(name)
        elif name == "pt":
            out = np.hypot(get("px"), get("py"))
        elif name == "phi":
            out = np.arctan2(get("py"), get("px"))
        elif name == "eta":
            out = eta_from_cartesian(get("pt"), get("pz"))
        elif name == "m":
            out = mass_from_cartesian(get("px"), get("py"), get("pz"), get("e"))
        else:
            out = derived_field(get, name)
        cache[name] = out
        return out

    return Obj(get, valid)
