"""Linear and nonlinear constraints on fit parameters (Gemini's ``setLinConstraint`` and
``setNlinConstraint``).

A constraint restricts ``lower <= c(theta) <= upper``; ``lower == upper`` is an equality.
Constraint functions see the *full* parameter vector (fixed parameters included), in the order
of the fit's :class:`~eftflow.inference.fit.parameters.Parameters`.

Constrained fits run on the SciPy backend (SLSQP by default, ``trust-constr`` on request).
Constrained profiles, MINOS-like intervals and contours minimise the objective subject to the
same constraints with the parameter(s) of interest fixed, and search the crossing of
``F - F_min = UP`` by root finding. Hessian-based covariances under active constraints follow the
Gemini guide: the inverse of the Lagrangian's Hessian restricted to the null space of the active
constraints' Jacobian, ``V = 2 UP Z (Z^T H_L Z)^{-1} Z^T``.

Example
-------
>>> lin = LinearConstraint({"a": 1.0, "b": 1.0}, lower=1.0, upper=1.0, name="sum")
>>> circle = NonlinearConstraint(lambda p: p[0] ** 2 + p[1] ** 2, lower=1.0, upper=1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError

from .numdiff import gradient

__all__ = [
    "InfeasibleConstraintError",
    "LinearConstraint",
    "NonlinearConstraint",
    "BoundConstraint",
    "bind_constraints",
]


class InfeasibleConstraintError(InputError):
    """The constraints cannot be satisfied together (with the bounds and fixed parameters)."""


def _check_bounds(lower: float, upper: float, name: str) -> tuple[float, float]:
    lo = -math.inf if lower is None else float(lower)
    hi = math.inf if upper is None else float(upper)
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise InfeasibleConstraintError(
            f"constraint bounds [{lo}, {hi}] are empty", field=f"constraints.{name}"
        )
    if lo == -math.inf and hi == math.inf:
        raise InputError(
            "a constraint needs a lower or an upper bound", field=f"constraints.{name}"
        )
    return lo, hi


@dataclass
class LinearConstraint:
    """``lower <= sum_i coefficients[i] * theta_i <= upper``.

    ``coefficients`` is a mapping ``name -> coefficient`` (others 0) or a full-length sequence.
    """

    coefficients: Mapping[str, float] | Sequence[float]
    lower: float = -math.inf
    upper: float = math.inf
    name: str = "linear"


@dataclass
class NonlinearConstraint:
    """``lower <= fun(theta) <= upper`` for a smooth scalar ``fun`` of the full vector.

    ``jac`` (optional) returns the gradient with respect to the full vector.
    """

    fun: Callable[[np.ndarray], float]
    lower: float = -math.inf
    upper: float = math.inf
    name: str = "nonlinear"
    jac: Callable[[np.ndarray], np.ndarray] | None = None


class BoundConstraint:
    """A constraint bound to a parameter set: evaluates on full vectors."""

    def __init__(self, constraint: LinearConstraint | NonlinearConstraint, names: list[str]):
        self.name = constraint.name
        self.lower, self.upper = _check_bounds(constraint.lower, constraint.upper, self.name)
        self.linear = isinstance(constraint, LinearConstraint)
        if self.linear:
            coef = constraint.coefficients
            if isinstance(coef, Mapping):
                vec = np.zeros(len(names))
                for key, val in coef.items():
                    if key not in names:
                        raise InputError(
                            f"unknown parameter {key!r} in a linear constraint; known: "
                            f"{', '.join(names)}",
                            field=f"constraints.{self.name}",
                        )
                    vec[names.index(key)] = float(val)
            else:
                vec = np.asarray(coef, dtype=float)
                if vec.shape != (len(names),):
                    raise InputError(
                        f"expected {len(names)} coefficients, got shape {vec.shape}",
                        field=f"constraints.{self.name}",
                    )
            if not np.all(np.isfinite(vec)) or not np.any(vec):
                raise InputError(
                    "coefficients must be finite and not all zero", field=f"constraints.{self.name}"
                )
            self._coef = vec
            self._fun = None
            self._jac = None
        elif isinstance(constraint, NonlinearConstraint):
            if not callable(constraint.fun):
                raise InputError("fun must be callable", field=f"constraints.{self.name}")
            self._coef = None
            self._fun = constraint.fun
            self._jac = constraint.jac
        else:
            raise InputError(
                f"expected LinearConstraint or NonlinearConstraint, got {type(constraint).__name__}",
                field="constraints",
            )

    @property
    def is_equality(self) -> bool:
        return self.lower == self.upper

    def value(self, x: np.ndarray) -> float:
        if self.linear:
            return float(self._coef @ x)
        return float(self._fun(np.asarray(x, dtype=float)))

    def grad(self, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
        if self.linear:
            return self._coef.copy()
        if self._jac is not None:
            return np.asarray(self._jac(np.asarray(x, dtype=float)), dtype=float)
        return gradient(self.value, x, steps)

    def hessian(self, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Hessian of ``c`` (zero for linear constraints)."""
        n = len(x)
        if self.linear:
            return np.zeros((n, n))
        from .numdiff import hessian

        return hessian(self.value, x, steps)

    def violation(self, x: np.ndarray) -> float:
        """Distance outside ``[lower, upper]`` (0 when satisfied)."""
        c = self.value(x)
        return max(self.lower - c, c - self.upper, 0.0)

    def is_active(self, x: np.ndarray, tol: float) -> bool:
        if self.is_equality:
            return True
        c = self.value(x)
        return abs(c - self.lower) <= tol or abs(c - self.upper) <= tol


def bind_constraints(constraints, names: list[str]) -> list[BoundConstraint]:
    """Validate constraints against the parameter names."""
    if constraints is None:
        return []
    if isinstance(constraints, LinearConstraint | NonlinearConstraint):
        constraints = [constraints]
    bound = [BoundConstraint(c, names) for c in constraints]
    seen: set[str] = set()
    for i, b in enumerate(bound):
        if b.name in seen:  # unnamed constraints share the default name: number them
            b.name = f"{b.name}_{i}"
        seen.add(b.name)
    return bound
