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
from eftflow.analysis.vectors import energy_from_mass, from_cartesian, mass_from_energy

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
    if name == "px":
        return get("pt") * np.cos(get("phi"))
    if name == "py":
        return get("pt") * np.sin(get("phi"))
    if name == "pz":
        return get("pt") * np.sinh(get("eta"))
    if name == "p":
        return get("pt") * np.cosh(get("eta"))
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
    """What an expression is evaluated on: the events and the values of earlier observables."""

    def __init__(self, objects: EventObjects, values: Mapping[str, Val] | None = None):
        self.objects = objects
        self.n = objects.n_events
        self.values = dict(values or {})
        self.cache: dict = {}

    def element(self, coll: str, index: int) -> Obj:
        key = ("obj", coll, index)
        if key in self.cache:
            return self.cache[key]
        c = self.objects[coll]
        counts = np.diff(c.offsets)
        if index >= 0:
            valid = counts > index
            idx = c.offsets[:-1] + index
        else:
            valid = counts >= -index
            idx = c.offsets[1:] + index
        if c.n_objects == 0:
            idx = None
        else:
            idx = np.where(valid, idx, 0)
        stored, derived = {}, {}

        def get(name):
            if name in c.fields:
                if name not in stored:
                    stored[name] = np.zeros(self.n) if idx is None else c.fields[name][idx]
                return stored[name]
            if name not in derived:
                derived[name] = derived_field(get, name)
            return derived[name]

        obj = Obj(get, None if bool(valid.all()) else valid)
        self.cache[key] = obj
        return obj

    def sum_object(self, colls: Iterable[str]) -> Obj:
        key = ("sum", tuple(colls))
        if key in self.cache:
            return self.cache[key]
        comps = [np.zeros(self.n) for _ in range(5)]
        for name in colls:
            c = self.objects[name]
            get = fields_getter(c.fields, {})
            evt = c.event_index()
            for k, f in enumerate(("px", "py", "pz", "e", "charge")):
                comps[k] += np.bincount(evt, weights=get(f), minlength=self.n)
        obj = cartesian_object(*comps[:4], comps[4], None)
        self.cache[key] = obj
        return obj


def cartesian_object(px, py, pz, e, charge, valid) -> Obj:
    stored = {"px": px, "py": py, "pz": pz, "e": e, "charge": charge}
    cache: dict = {}

    def get(name):
        if name in stored:
            return stored[name]
        if name in ("pt", "eta", "phi", "m"):
            if "pt" not in cache:
                cache["pt"], cache["eta"], cache["phi"], cache["m"] = from_cartesian(px, py, pz, e)
            return cache[name]
        if name not in cache:
            cache[name] = derived_field(get, name)
        return cache[name]

    return Obj(get, valid)
