"""Parameters, benchmarks and systematics: the vocabulary of an EFT measurement.

These are plain data objects with the names MadMiner uses (``lha_block``, ``lha_id``,
``morphing_max_power``, ``parameter_range``, ``param_card_transform``), so that a MadMiner setup
maps one to one. Validation happens at construction: a bad value raises a
:class:`~eftflow.errors.ConfigError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eftflow.errors import ConfigError
from eftflow.physics.expression import ArithmeticExpression

__all__ = [
    "Parameter",
    "Benchmark",
    "Systematic",
    "NuisanceParameter",
    "SYSTEMATIC_TYPES",
    "benchmark_matrix",
]

SYSTEMATIC_TYPES = ("norm", "scale", "pdf")


@dataclass(frozen=True)
class Parameter:
    """A theory parameter θ_p (e.g. a Wilson coefficient).

    Parameters
    ----------
    name
        Unique name, e.g. ``"CWL2"``.
    lha_block, lha_id
        Where the parameter sits in the param card (block name and id).
    morphing_max_power
        Highest power of θ_p in the squared matrix element (2 for one insertion of a dim-6
        operator: SM × BSM interference plus BSM²).
    parameter_range
        ``(low, high)``: the range the morphing basis is optimised for.
    param_card_transform
        Optional safe arithmetic expression in ``theta`` giving the value written to the param
        card (e.g. ``"16.52*theta"``); ``None`` writes θ itself.
    """

    name: str
    lha_block: str = "eft"
    lha_id: int = 1
    morphing_max_power: int = 2
    parameter_range: tuple[float, float] = (-1.0, 1.0)
    param_card_transform: str | None = None

    def __post_init__(self):
        where = f"parameters.{self.name}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("parameter name must be a non-empty string", field="parameters")
        if (
            not isinstance(self.morphing_max_power, (int, np.integer))
            or self.morphing_max_power < 0
        ):
            raise ConfigError(
                f"morphing_max_power must be a non-negative integer, got {self.morphing_max_power!r}",
                field=f"{where}.morphing_max_power",
            )
        try:
            lo, hi = (float(v) for v in self.parameter_range)
        except (TypeError, ValueError):
            raise ConfigError(
                f"parameter_range must be two numbers, got {self.parameter_range!r}",
                field=f"{where}.parameter_range",
            ) from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ConfigError(
                f"parameter_range must be finite with low < high, got {self.parameter_range!r}",
                field=f"{where}.parameter_range",
            )
        object.__setattr__(self, "parameter_range", (lo, hi))
        object.__setattr__(self, "lha_id", int(self.lha_id))
        object.__setattr__(self, "morphing_max_power", int(self.morphing_max_power))
        if self.param_card_transform in ("", "_", "None"):
            object.__setattr__(self, "param_card_transform", None)
        if self.param_card_transform is not None:
            ArithmeticExpression(
                self.param_card_transform,
                ("theta",),
                source=(None, f"{where}.param_card_transform"),
            )
            points = [lo, hi, 0.5 * (lo + hi)] + ([0.0] if lo <= 0.0 <= hi else [])
            self.check_card_value(points, what="parameter_range ends, midpoint and 0 inside it")

    def check_card_value(self, thetas, *, what: str) -> None:
        """Evaluate the param-card transform at ``thetas``; a ConfigError if a value is not finite.

        ``what`` says where the points come from (for the message).
        """
        for theta in thetas:
            value = self.card_value(float(theta))
            if not np.isfinite(value):
                raise ConfigError(
                    f"{self.param_card_transform!r} gives {value} at theta = {float(theta):g} "
                    f"({what}); the param card needs finite values",
                    field=f"parameters.{self.name}.param_card_transform",
                )

    def card_value(self, theta: float) -> float:
        """Value written to the param card for parameter value ``theta``."""
        if self.param_card_transform is None:
            return float(theta)
        return float(ArithmeticExpression(self.param_card_transform, ("theta",))(theta=theta))


@dataclass(frozen=True)
class Benchmark:
    """A named parameter point θ_b (or a nuisance benchmark)."""

    name: str
    values: dict[str, float] = field(default_factory=dict)
    is_nuisance: bool = False
    is_reference: bool = False

    def vector(self, parameter_names: list[str]) -> np.ndarray:
        """θ_b as an array in the order of ``parameter_names``."""
        return np.array([float(self.values.get(p, 0.0)) for p in parameter_names])


@dataclass(frozen=True)
class Systematic:
    """A source of systematic uncertainty (MadMiner's ``add_systematics``).

    ``type`` is ``norm`` (value: relative size, e.g. 0.1 for ±10 %), ``scale`` (value: the scale
    variations, e.g. ``"0.5,1.0,2.0"``; ``scale`` is ``mu``, ``mur`` or ``muf``) or ``pdf``
    (value: the PDF set name, e.g. ``"CT10"``).
    """

    name: str
    type: str
    value: str
    scale: str | None = None

    def __post_init__(self):
        if self.type not in SYSTEMATIC_TYPES:
            raise ConfigError(
                f"unknown systematic type {self.type!r}; expected one of {', '.join(SYSTEMATIC_TYPES)}",
                field=f"systematics.{self.name}.type",
            )
        if self.type == "scale" and self.scale not in ("mu", "mur", "muf"):
            raise ConfigError(
                f"scale systematics need scale 'mu', 'mur' or 'muf', got {self.scale!r}",
                field=f"systematics.{self.name}.scale",
            )
        if self.type == "norm":
            try:
                float(self.value)
            except ValueError:
                raise ConfigError(
                    f"norm systematics need a number, got {self.value!r}",
                    field=f"systematics.{self.name}.value",
                ) from None


@dataclass(frozen=True)
class NuisanceParameter:
    """A nuisance parameter ν and the benchmarks at ν = +1 / −1 (``None`` if one-sided)."""

    name: str
    systematic: str
    benchmark_positive: str | None
    benchmark_negative: str | None = None


def benchmark_matrix(benchmarks: list[Benchmark], parameter_names: list[str]) -> np.ndarray:
    """Stack benchmark values into an array of shape (n_benchmarks, n_parameters)."""
    if not benchmarks:
        return np.zeros((0, len(parameter_names)))
    return np.stack([b.vector(parameter_names) for b in benchmarks])
