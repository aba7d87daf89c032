"""Plain result objects of the fit front end, each with ``summary()`` text and ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eftflow.jsonable import to_jsonable

__all__ = [
    "OptimizeResult",
    "CovarianceResult",
    "ConfidenceResult",
    "ProfileResult",
    "ContourResult",
    "FitResult",
]


@dataclass
class OptimizeResult:
    """Outcome of :meth:`Fit.optimize`."""

    names: list[str]
    values: np.ndarray
    fixed: list[bool]
    fval: float
    success: bool
    message: str
    nfev: int
    backend: str
    active_constraints: list[str] = field(default_factory=list)
    ngrad: int = 0  # analytic-gradient calls (0: finite differences)

    @property
    def parameters(self) -> dict[str, float]:
        """``{name: best-fit value}``."""
        return dict(zip(self.names, map(float, self.values)))

    def summary(self) -> str:
        lines = [
            f"OptimizeResult  backend={self.backend}  success={self.success}  nfev={self.nfev}"
            + (f"  ngrad={self.ngrad}" if self.ngrad else ""),
            f"  message: {self.message}",
            f"  minimum: {self.fval:.10g}",
        ]
        if self.active_constraints:
            lines.append(f"  active constraints: {', '.join(self.active_constraints)}")
        width = max(len(n) for n in self.names)
        for n, v, f in zip(self.names, self.values, self.fixed):
            lines.append(f"  {n:<{width}}  {v: .8g}{'  (fixed)' if f else ''}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


@dataclass
class CovarianceResult:
    """Hessian-based covariance of the free parameters (zero rows for active bounds)."""

    names: list[str]
    matrix: np.ndarray
    success: bool
    method: str
    up: float
    at_bound: list[str] = field(default_factory=list)

    @property
    def errors(self) -> dict[str, float]:
        """``{name: sqrt(V_ii)}``."""
        return dict(zip(self.names, np.sqrt(np.clip(np.diag(self.matrix), 0, None)).tolist()))

    @property
    def correlation(self) -> np.ndarray:
        """Correlation matrix (0 rows/columns for parameters without error)."""
        d = np.sqrt(np.clip(np.diag(self.matrix), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            c = self.matrix / np.outer(d, d)
        c[~np.isfinite(c)] = 0.0
        np.fill_diagonal(c, np.where(d > 0, 1.0, 0.0))
        return c

    def summary(self) -> str:
        lines = [f"CovarianceResult  method={self.method}  success={self.success}  UP={self.up:g}"]
        width = max(len(n) for n in self.names)
        err = self.errors
        for n in self.names:
            note = "  (at bound: fixed)" if n in self.at_bound else ""
            lines.append(f"  {n:<{width}}  +- {err[n]:.6g}{note}")
        lines.append("  correlation:")
        for n, row in zip(self.names, self.correlation):
            lines.append(f"  {n:<{width}} " + " ".join(f"{v:7.3f}" for v in row))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = to_jsonable(self.__dict__)
        d["errors"] = self.errors
        return d


@dataclass
class ConfidenceResult:
    """A MINOS (asymmetric) interval: ``[value - errn, value + errp]`` where ``F - F_min = UP``."""

    name: str
    value: float
    errn: float
    errp: float
    up: float
    success: bool
    nfev: int
    method: str
    at_lower_limit: bool = False
    at_upper_limit: bool = False

    @property
    def interval(self) -> tuple[float, float]:
        return (self.value - self.errn, self.value + self.errp)

    def summary(self) -> str:
        lo, hi = self.interval
        flags = [
            f
            for f, on in (
                ("lower limit hit", self.at_lower_limit),
                ("upper limit hit", self.at_upper_limit),
            )
            if on
        ]
        text = (
            f"{self.name} = {self.value:.6g} -{self.errn:.4g} +{self.errp:.4g}  "
            f"[{lo:.6g}, {hi:.6g}]  UP={self.up:.4g}  method={self.method}  "
            f"success={self.success}"
        )
        return text + (f"  ({', '.join(flags)})" if flags else "")

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


@dataclass
class ProfileResult:
    """A 1D scan: ``kind`` is ``"slice"`` (others fixed) or ``"profile"`` (others re-optimised)."""

    name: str
    values: np.ndarray
    stat: np.ndarray
    fmin: float
    kind: str
    success: np.ndarray

    @property
    def delta(self) -> np.ndarray:
        """``stat - fmin``."""
        return self.stat - self.fmin

    def summary(self) -> str:
        i = int(np.argmin(self.stat))
        return (
            f"ProfileResult ({self.kind}) of {self.name}: {len(self.values)} points in "
            f"[{self.values[0]:.6g}, {self.values[-1]:.6g}], lowest delta {self.delta[i]:.4g} "
            f"at {self.values[i]:.6g}, all converged={bool(np.all(self.success))}"
        )

    def to_dict(self) -> dict:
        d = to_jsonable(self.__dict__)
        d["delta"] = self.delta.tolist()
        return d


@dataclass
class ContourResult:
    """Points ``(x, y)`` of a MINOS contour ``min_others F(x, y, ...) - F_min = UP``."""

    x_name: str
    y_name: str
    x: np.ndarray
    y: np.ndarray
    up: float
    center: tuple[float, float]
    success: bool
    method: str

    def summary(self) -> str:
        return (
            f"ContourResult {self.x_name} vs {self.y_name}: {len(self.x)} points, UP={self.up:.4g}, "
            f"x in [{self.x.min():.6g}, {self.x.max():.6g}], y in [{self.y.min():.6g}, "
            f"{self.y.max():.6g}], method={self.method}, success={self.success}"
        )

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


@dataclass
class FitResult:
    """:meth:`Fit.run`: the optimum plus its covariance."""

    optimize: OptimizeResult
    covariance: CovarianceResult | None

    @property
    def success(self) -> bool:
        return self.optimize.success and (self.covariance is None or self.covariance.success)

    def summary(self) -> str:
        parts = [self.optimize.summary()]
        if self.covariance is not None:
            parts.append(self.covariance.summary())
        return "\n".join(parts)

    def to_dict(self) -> dict:
        return {
            "optimize": self.optimize.to_dict(),
            "covariance": None if self.covariance is None else self.covariance.to_dict(),
        }
