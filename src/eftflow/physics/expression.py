"""Safe arithmetic expressions (param-card transforms and similar one-line formulas).

An expression such as ``"16.52 * theta"`` or ``"1 + 0.5*theta**2"`` is parsed with :mod:`ast`
and compiled into a tree of whitelisted operations: numbers, the declared variable names, the
operators ``+ - * / ** %`` (unary and binary) and the functions in :data:`FUNCTIONS`. Anything else
(attribute access, calls to other names, subscripts, comprehensions, lambdas, strings, ...) is
rejected with an :class:`~eftflow.errors.ExpressionError` that names the offending token. Nothing
is ever passed to ``eval``.

Example
-------
>>> f = ArithmeticExpression("16.52 * theta + sqrt(4)", variables=("theta",))
>>> f(theta=1.0)
18.52
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Iterable

import numpy as np

from eftflow.errors import ExpressionError

__all__ = ["ArithmeticExpression", "FUNCTIONS", "check_arithmetic"]

FUNCTIONS: dict[str, Callable] = {
    "sqrt": np.sqrt,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "abs": np.abs,
}
CONSTANTS = {"pi": math.pi, "e": math.e}

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _token(node: ast.AST, text: str) -> str:
    seg = ast.get_source_segment(text, node)
    col = getattr(node, "col_offset", None)
    where = f" at column {col + 1}" if col is not None else ""
    return f"'{seg}'{where}" if seg else type(node).__name__


class ArithmeticExpression:
    """A parsed, whitelisted arithmetic expression in a few named variables.

    Parameters
    ----------
    text
        The expression, e.g. ``"0.5 * theta"``.
    variables
        Names the expression may use (besides ``pi``, ``e`` and the functions).
    source
        Where the text came from (file and field), quoted in error messages.
    """

    def __init__(
        self,
        text: str,
        variables: Iterable[str] = ("theta",),
        *,
        source: tuple[str | None, str | None] = (None, None),
    ):
        self.text = str(text)
        self.variables = tuple(variables)
        self._file, self._field = source
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as err:
            raise self._error(f"not a valid expression ({err.msg}) in {self.text!r}") from None
        self._fn = self._compile(tree.body, self.text.strip())

    def _error(self, msg: str) -> ExpressionError:
        field = self._field or "expression"
        return ExpressionError(msg, file=self._file, field=field)

    def _compile(self, node: ast.AST, text: str) -> Callable[[dict], object]:
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            try:  # numpy floats: integer arithmetic such as 9**9**9**9 would run unbounded
                value = np.float64(node.value)
            except OverflowError:
                raise self._error(f"number {_token(node, text)} is too large") from None
            return lambda env: value
        if isinstance(node, ast.Name):
            name = node.id
            if name in self.variables:
                return lambda env: env[name]
            if name in CONSTANTS:
                value = CONSTANTS[name]
                return lambda env: value
            allowed = ", ".join([*self.variables, *CONSTANTS])
            raise self._error(f"unknown name {_token(node, text)} in {text!r} (allowed: {allowed})")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op = _BINOPS[type(node.op)]
            left, right = self._compile(node.left, text), self._compile(node.right, text)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            op = _UNARY[type(node.op)]
            operand = self._compile(node.operand, text)
            return lambda env: op(operand(env))
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise self._error(
                    f"call of {_token(node.func, text)} is not allowed in {text!r} "
                    f"(allowed functions: {', '.join(FUNCTIONS)})"
                )
            if node.keywords or len(node.args) != 1:
                raise self._error(
                    f"{node.func.id}() takes exactly one positional argument in {text!r}"
                )
            fn = FUNCTIONS[node.func.id]
            arg = self._compile(node.args[0], text)
            return lambda env: fn(arg(env))
        raise self._error(f"{_token(node, text)} is not plain arithmetic in {text!r}")

    def __call__(self, **values):
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise self._error(f"no value given for {', '.join(missing)}")
        # numpy semantics throughout (inf/nan, not Python's OverflowError/ZeroDivisionError)
        values = {k: np.float64(v) if np.ndim(v) == 0 else v for k, v in values.items()}
        with np.errstate(all="ignore"):
            out = self._fn(values)
        if np.ndim(out) == 0:
            return float(out)
        return out

    def __repr__(self) -> str:
        return f"ArithmeticExpression({self.text!r})"


def check_arithmetic(
    text: str, variables: Iterable[str] = ("theta",), *, file=None, field=None
) -> str:
    """Validate ``text`` as a safe arithmetic expression and return it unchanged."""
    ArithmeticExpression(text, variables, source=(file, field))
    return text
