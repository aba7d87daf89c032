"""The :class:`Scanner` protocol, the problem scanners see, and the scanner registry."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from eftflow.errors import ConfigError

__all__ = [
    "ScanProblem",
    "ScanResult",
    "Scanner",
    "BaseScanner",
    "register_scanner",
    "get_scanner",
    "registered_scanners",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "eftflow.scanners"
_BUILTIN = {
    "random": "eftflow.inference.scan.scanners.random_points",
    "grid": "eftflow.inference.scan.scanners.grid",
    "de": "eftflow.inference.scan.scanners.de",
    "mcmc": "eftflow.inference.scan.scanners.mcmc",
    "dynesty": "eftflow.inference.scan.scanners.nested",
}
_SCANNERS: dict[str, type] = {}


@dataclass
class ScanProblem:
    """What a scanner works on: maximise / sample ``loglike(u)`` over the unit cube.

    Attributes
    ----------
    ndim
        Number of sampled parameters.
    names
        Their qualified names (axis order).
    evaluate
        ``evaluate(u (n, ndim)) -> (loglike (n,), ids (n, 2))``; ids are (MPIrank, pointID).
        Batches are evaluated in parallel under MPI: pass as many points at once as you can.
    rng
        The scanner's generator (its state is checkpointed).
    """

    ndim: int
    names: list[str]
    evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    rng: np.random.Generator


@dataclass
class ScanResult:
    """What a scanner reports besides the printed points.

    Attributes
    ----------
    info
        Summary numbers (``logZ``, ``logZerr``, best fit, acceptance, ...), JSON-serialisable.
    weights
        Posterior weights by (MPIrank, pointID) for samplers (printed as ``Posterior``), or None.
    """

    info: dict[str, Any] = field(default_factory=dict)
    weights: dict[tuple[int, int], float] | None = None


@runtime_checkable
class Scanner(Protocol):
    """A scanner plugin."""

    name: ClassVar[str]
    options_schema: ClassVar[dict]

    @classmethod
    def check_options(cls, options: dict, *, file: str | None = None) -> dict: ...

    def run(self, problem: ScanProblem, options: dict) -> ScanResult: ...


class BaseScanner:
    """Option checking shared by the plugins: ``options_schema`` with defaults."""

    name: ClassVar[str] = ""
    options_schema: ClassVar[dict] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }

    @classmethod
    def check_options(cls, options: dict, *, file: str | None = None) -> dict:
        """Validate the scanner options and fill in defaults."""
        from eftflow.inference.scan.config import fill_defaults, validate_against

        validate_against(options, cls.options_schema, file=file, prefix="scanner.options")
        return fill_defaults(dict(options), cls.options_schema)

    @classmethod
    def check_dimensions(cls, options: dict, ndim: int, *, file: str | None = None) -> None:
        """Check options that depend on the number of sampled parameters (before any output
        is written); raise :class:`ConfigError` naming ``scanner.options.<key>``."""

    def run(self, problem: ScanProblem, options: dict) -> ScanResult:  # pragma: no cover
        raise NotImplementedError


def register_scanner(name: str):
    """Class decorator: make a scanner available as ``scanner: {name: <name>}``."""

    def deco(cls):
        cls.name = name
        _SCANNERS[name] = cls
        return cls

    return deco


def registered_scanners() -> list[str]:
    """Names of the available scanners (built-ins and entry points)."""
    for mod in _BUILTIN.values():
        importlib.import_module(mod)
    _load_entry_points()
    return sorted(_SCANNERS)


def _load_entry_points(name: str | None = None) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if name is None or ep.name == name:
            ep.load()


def get_scanner(name: str, *, file: str | None = None) -> type:
    """The scanner class called ``name``."""
    if name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _SCANNERS:
        _load_entry_points(name)
    if name not in _SCANNERS:
        raise ConfigError(
            f"unknown scanner {name!r} (available: {', '.join(registered_scanners())})",
            file=file,
            field="scanner.name",
        )
    return _SCANNERS[name]


def batch_schema(**props) -> dict:
    """Options schema with ``batch_size`` plus the given properties."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "batch_size": {
                "type": "integer",
                "minimum": 1,
                "default": 100,
                "description": "points evaluated per batch (spread over MPI ranks)",
            },
            **props,
        },
    }
