"""Named fit parameters: value, scale (step), bounds and the fixed flag.

A :class:`Parameters` set is an ordered collection of :class:`Parameter` objects addressed by
name. The objective function of a fit always receives the *full* vector of values in this order;
the fit front end hides which ones are fixed.

Example
-------
>>> pars = Parameters([Parameter("a", 1.0, scale=0.1), Parameter("b", 0.0, lower=-1, upper=1)])
>>> pars.names
['a', 'b']
>>> pars["b"].upper
1.0
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from eftflow.errors import InputError

__all__ = ["Parameter", "Parameters"]


@dataclass
class Parameter:
    """One named fit parameter.

    Parameters
    ----------
    name
        Unique name.
    value
        Starting value (updated to the best fit by :meth:`Fit.optimize`).
    scale
        Typical size of a variation (the initial step, Minuit's "error"); ``None`` picks
        ``0.1 * |value|`` or 0.1 when the value is zero.
    lower, upper
        Bounds (``-inf`` / ``inf`` when absent).
    fixed
        Keep the value constant during minimisation.
    """

    name: str
    value: float
    scale: float | None = None
    lower: float = -math.inf
    upper: float = math.inf
    fixed: bool = False

    def __post_init__(self) -> None:
        field = f"parameters.{self.name}"
        if not isinstance(self.name, str) or not self.name:
            raise InputError("a parameter name must be a non-empty string", field="parameters")
        try:
            self.value = float(self.value)
            self.lower = -math.inf if self.lower is None else float(self.lower)
            self.upper = math.inf if self.upper is None else float(self.upper)
        except (TypeError, ValueError):
            raise InputError("value and bounds must be numbers", field=field) from None
        if not math.isfinite(self.value):
            raise InputError(f"starting value {self.value} is not finite", field=field)
        if math.isnan(self.lower) or math.isnan(self.upper) or not self.lower < self.upper:
            raise InputError(
                f"bad bounds [{self.lower}, {self.upper}]: need lower < upper", field=field
            )
        if not self.lower <= self.value <= self.upper:
            raise InputError(
                f"starting value {self.value} is outside the bounds [{self.lower}, {self.upper}]",
                field=field,
            )
        if self.scale is None:
            self.scale = 0.1 * abs(self.value) if self.value != 0 else 0.1
            width = self.upper - self.lower
            if math.isfinite(width):
                self.scale = min(self.scale, 0.1 * width)
        self.scale = float(self.scale)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"scale must be a positive number, got {self.scale}", field=field)
        self.fixed = bool(self.fixed)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(lower, upper)``."""
        return (self.lower, self.upper)


class Parameters:
    """Ordered set of named :class:`Parameter` objects.

    Parameters
    ----------
    parameters
        :class:`Parameter` objects, or a mapping ``name -> starting value``.
    """

    def __init__(self, parameters: Iterable[Parameter] | Mapping[str, float]):
        if isinstance(parameters, Mapping):
            parameters = [Parameter(str(k), v) for k, v in parameters.items()]
        self._pars: list[Parameter] = list(parameters)
        if not self._pars:
            raise InputError("a fit needs at least one parameter", field="parameters")
        seen: set[str] = set()
        for p in self._pars:
            if not isinstance(p, Parameter):
                raise InputError(f"expected Parameter objects, got {type(p).__name__}")
            if p.name in seen:
                raise InputError(f"duplicate parameter name {p.name!r}", field="parameters")
            seen.add(p.name)

    # -- access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pars)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._pars)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self._pars)

    def __getitem__(self, name: str) -> Parameter:
        return self._pars[self.index(name)]

    def index(self, name: str) -> int:
        """Position of ``name``; :class:`InputError` naming the known ones if absent."""
        for i, p in enumerate(self._pars):
            if p.name == name:
                return i
        raise InputError(f"unknown parameter {name!r}; known: {', '.join(self.names)}", field=name)

    @property
    def names(self) -> list[str]:
        """All names, in order."""
        return [p.name for p in self._pars]

    @property
    def free_names(self) -> list[str]:
        """Names of the parameters that are not fixed."""
        return [p.name for p in self._pars if not p.fixed]

    @property
    def free_mask(self) -> np.ndarray:
        """Boolean mask of the free parameters."""
        return np.array([not p.fixed for p in self._pars])

    @property
    def values(self) -> np.ndarray:
        """Current values (all parameters)."""
        return np.array([p.value for p in self._pars], dtype=float)

    @property
    def scales(self) -> np.ndarray:
        """Scales (all parameters)."""
        return np.array([p.scale for p in self._pars], dtype=float)

    @property
    def lower(self) -> np.ndarray:
        return np.array([p.lower for p in self._pars], dtype=float)

    @property
    def upper(self) -> np.ndarray:
        return np.array([p.upper for p in self._pars], dtype=float)

    # -- updates ----------------------------------------------------------------------------
    def set_values(self, values: Iterable[float]) -> None:
        """Set all values (in order), clipping into the bounds."""
        vals = np.asarray(list(values), dtype=float)
        if vals.shape != (len(self),):
            raise InputError(f"expected {len(self)} values, got shape {vals.shape}")
        for p, v in zip(self._pars, vals):
            p.value = float(min(max(v, p.lower), p.upper))

    def copy(self) -> Parameters:
        """Deep copy (fits on copies leave this set untouched)."""
        return Parameters([copy.copy(p) for p in self._pars])

    def to_dict(self) -> dict[str, float]:
        """``{name: value}``."""
        return {p.name: p.value for p in self._pars}

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.name}={p.value:.6g}{' (fixed)' if p.fixed else ''}" for p in self)
        return f"Parameters({inner})"
