"""Safe arithmetic expressions for translated parameters, hierarchical priors and observables.

An expression is parsed with :mod:`ast` and checked against a whitelist before it is ever
evaluated: numbers, names of known quantities (``cW`` or ``Model.cW``), the operators
``+ - * / ** %`` and unary ``+ -``, and calls of a few numpy functions. Anything else
(attributes of objects, subscripts, lambdas, ``__import__``, comprehensions, ...) is refused with
an :class:`~eftflow.errors.ExpressionError` naming the token. Nothing is passed to ``eval``.

Example
-------
>>> expr = Expression.parse("2*cW + exp(EFT.cY)")
>>> sorted(expr.names)
['EFT::cY', 'cW']
>>> float(expr({"cW": 1.0, "EFT::cY": 0.0}))
3.0
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from eftflow.errors import ExpressionError
from eftflow.physics.expression import CONSTANTS
from eftflow.physics.expression import FUNCTIONS as UNARY_FUNCTIONS

__all__ = ["Expression", "FUNCTIONS", "CONSTANTS"]

#: the one-argument functions of the safe arithmetic (shared with eftflow.physics.expression)
FUNCTIONS = {**UNARY_FUNCTIONS, "minimum": np.minimum, "maximum": np.maximum}

_BINOPS = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
    ast.Mod: np.mod,
}
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}


def _qualified(node: ast.AST) -> str | None:
    """``Model.par`` -> ``Model::par``; a plain name -> itself; anything else -> None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}::{node.attr}"
    return None


@dataclass(frozen=True)
class Expression:
    """A checked arithmetic expression.

    Attributes
    ----------
    text
        The source text.
    names
        The quantities it reads (``Model.par`` written as ``Model::par``).
    """

    text: str
    names: frozenset[str]
    _tree: ast.Expression

    @classmethod
    def parse(cls, text: str, *, file: str | None = None, field: str | None = None) -> Expression:
        """Parse and check ``text``; raise :class:`ExpressionError` on anything not whitelisted."""
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(
                "expected a non-empty arithmetic expression", file=file, field=field
            )
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as err:
            raise ExpressionError(
                f"expression {text!r} is not valid arithmetic ({err.msg})", file=file, field=field
            ) from None
        names: set[str] = set()
        cls._check(tree.body, names, text, file, field)
        return cls(text=text, names=frozenset(names), _tree=tree)

    @classmethod
    def _check(cls, node, names, text, file, field) -> None:
        def refuse(token: str, why: str) -> ExpressionError:
            loc = f"{field} (token {token!r})" if field else f"token {token!r}"
            return ExpressionError(f"{why} in expression {text!r}", file=file, field=loc)

        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise refuse(repr(node.value), "only numeric constants are allowed")
            try:
                float(node.value)
            except OverflowError:
                raise refuse(ast.get_source_segment(text, node) or "", "number too large") from None
            return
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise refuse(type(node.op).__name__, "operator not allowed")
            cls._check(node.left, names, text, file, field)
            cls._check(node.right, names, text, file, field)
            return
        if isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise refuse(type(node.op).__name__, "operator not allowed")
            cls._check(node.operand, names, text, file, field)
            return
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                token = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise refuse(
                    token, f"function not allowed (allowed: {', '.join(sorted(FUNCTIONS))})"
                )
            if node.keywords:
                raise refuse(node.keywords[0].arg or "**", "keyword arguments are not allowed")
            for arg in node.args:
                if isinstance(arg, ast.Starred):
                    raise refuse("*", "starred arguments are not allowed")
                cls._check(arg, names, text, file, field)
            return
        if isinstance(node, ast.Name | ast.Attribute):
            name = _qualified(node)
            if name is None:
                raise refuse(ast.unparse(node), "only names or Model.parameter may be referenced")
            if any(part.startswith("_") for part in name.split("::")):
                raise refuse(name, "names starting with '_' are not allowed")
            if name in FUNCTIONS:
                raise refuse(name, "function used as a value")
            if name not in CONSTANTS:
                names.add(name)
            return
        raise refuse(type(node).__name__, "syntax not allowed")

    def __call__(self, values: Mapping[str, object]):
        """Evaluate with ``values`` (floats or numpy arrays, broadcast together).

        Floating-point problems (log of a negative number, overflow) give NaN or inf without a
        warning; the caller decides whether such a point is invalid.
        """
        with np.errstate(all="ignore"):
            return self._eval(self._tree.body, values)

    def _eval(self, node, values):
        if isinstance(node, ast.Constant):
            return float(node.value)  # int64 powers would overflow silently
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](
                self._eval(node.left, values), self._eval(node.right, values)
            )
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, values))
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](*(self._eval(a, values) for a in node.args))
        name = _qualified(node)
        if name in CONSTANTS:
            return CONSTANTS[name]
        try:
            return values[name]
        except KeyError:
            raise ExpressionError(f"unknown name in expression {self.text!r}", field=name) from None
