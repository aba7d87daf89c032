"""The tables of the expression language of :mod:`eftflow.analysis.expressions`.

Object attributes, the default schema of reconstructed objects, named constants and summed
objects, the kinds of compiled values, the whitelisted operators and the syntax that is refused
(with the word an error message uses for it).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eftflow.analysis.objects import STANDARD_FIELDS
from eftflow.analysis.values import EvalContext

__all__ = [
    "VECTOR_FIELDS",
    "DEFAULT_SCHEMA",
    "CONSTANTS",
    "SUM_OBJECTS",
    "NUMBER",
    "OBJECT",
    "COLLECTION",
    "JAGGED",
    "ARITH",
    "CMP",
    "FORBIDDEN",
    "as_float",
    "Node",
]

#: attributes every object has (stored or derived)
VECTOR_FIELDS = (
    "pt",
    "eta",
    "phi",
    "m",
    "e",
    "charge",
    "px",
    "py",
    "pz",
    "p",
    "y",
    "theta",
    "et",
    "mt",
)
DEFAULT_SCHEMA: dict[str, dict] = {
    "e": {"fields": [*STANDARD_FIELDS, "pid"], "single": False},
    "mu": {"fields": [*STANDARD_FIELDS, "pid"], "single": False},
    "l": {"fields": [*STANDARD_FIELDS, "pid"], "single": False},
    "a": {"fields": list(STANDARD_FIELDS), "single": False},
    "j": {"fields": [*STANDARD_FIELDS, "btag"], "single": False},
    "met": {"fields": list(STANDARD_FIELDS), "single": True},
}
CONSTANTS = {"pi": math.pi, "inf": math.inf}
SUM_OBJECTS = {"visible": ("l", "a", "j"), "all": ("l", "a", "j", "met")}

NUMBER, OBJECT, COLLECTION, JAGGED = "number", "object", "collection", "jagged"

ARITH = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.BitAnd: np.logical_and,
    ast.BitOr: np.logical_or,
}
CMP = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
FORBIDDEN = {
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.NamedExpr: "assignment expression ':='",
    ast.Starred: "starred argument",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.Slice: "slice",
}


def as_float(v, error):
    """``v`` as a numpy float (numpy's inf, not Python's OverflowError, past the float range);
    ``error()`` (an exception to raise) for an integer literal beyond it."""
    try:
        return np.float64(float(v))
    except OverflowError:
        raise error() from None


@dataclass
class Node:
    """A compiled (sub)expression: its kind, the function computing it, the fields it reads."""

    kind: str
    fn: Callable[[EvalContext], object]
    fields: frozenset = frozenset()
    #: collection a jagged value belongs to (element-wise ops need the same one)
    coll: str | None = None
