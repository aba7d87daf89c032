"""The parameter model of a scan: sampled, fixed and translated (derived) parameters.

Parameters are named ``Model::par`` internally (``Model.par`` in expressions) and may be
referred to by their bare name when only one model has it. A parameter of a child model can be
an arithmetic expression of other parameters (``prior: derived``, GAMBIT's translated
parameters), and a hyperparameter (``mean``, ``sigma``) of a Gaussian or lognormal prior can be
an expression too (hierarchical priors). The evaluation order is resolved once (a topological
sort); a cycle is an error naming the parameters on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eftflow.errors import ConfigError
from eftflow.inference.scan.expressions import Expression
from eftflow.inference.scan.priors import SAMPLED_PRIORS, transform

__all__ = ["Parameter", "ParameterModel", "param_label", "topological_order"]


def param_label(model: str, name: str) -> str:
    """GAMBIT's printed name of a model parameter."""
    return f"#{model}_parameters @{model}::primary_parameters::{name}"


def topological_order(deps: dict[str, set[str]], *, what: str, file=None, field=None) -> list[str]:
    """Order the keys of ``deps`` so each comes after what it depends on (Kahn, stable).

    Raises :class:`ConfigError` naming a dependency cycle.
    """
    order: list[str] = []
    done: set[str] = set()
    pending = list(deps)
    while pending:
        ready = [k for k in pending if deps[k] <= done]
        if not ready:
            # find one cycle to report
            start = pending[0]
            path = [start]
            node = start
            while True:
                node = sorted(deps[node] - done)[0]
                if node in path:
                    cycle = [*path[path.index(node) :], node]
                    break
                path.append(node)
            raise ConfigError(
                f"circular dependency among {what}: {' -> '.join(cycle)}", file=file, field=field
            )
        for k in ready:
            order.append(k)
            done.add(k)
        pending = [k for k in pending if k not in done]
    return order


@dataclass(frozen=True)
class Parameter:
    """One declared parameter."""

    model: str
    name: str
    prior: str
    hyper: dict = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.model}::{self.name}"

    @property
    def label(self) -> str:
        return param_label(self.model, self.name)

    @property
    def sampled(self) -> bool:
        return self.prior in SAMPLED_PRIORS


class ParameterModel:
    """All parameters of a scan and the map from the unit hypercube to their values.

    Attributes
    ----------
    parameters
        Every parameter in declaration order.
    sampled
        The sampled ones; their order is the order of the unit-cube axes.
    """

    def __init__(self, parameters: list[Parameter], *, file: str | None = None):
        self.parameters = parameters
        self.sampled = [p for p in parameters if p.sampled]
        self.file = file
        by_bare: dict[str, list[str]] = {}
        for p in parameters:
            by_bare.setdefault(p.name, []).append(p.qualified)
        self.aliases = {k: v[0] for k, v in by_bare.items() if len(v) == 1}
        self._ambiguous = {k: v for k, v in by_bare.items() if len(v) > 1}
        self._by_q = {p.qualified: p for p in parameters}
        deps: dict[str, set[str]] = {}
        for p in parameters:
            names: set[str] = set()
            for key, val in p.hyper.items():
                if isinstance(val, Expression):
                    names |= {self.resolve(n, field=self._field(p, key)) for n in val.names}
            deps[p.qualified] = names
        self.order = topological_order(deps, what="parameters", file=file, field="models")

    @staticmethod
    def _field(p: Parameter, key: str) -> str:
        return f"models.{p.model}.parameters.{p.name}.{key}"

    @property
    def ndim(self) -> int:
        return len(self.sampled)

    @property
    def names(self) -> list[str]:
        """Qualified names of the sampled parameters (unit-cube order)."""
        return [p.qualified for p in self.sampled]

    def resolve(self, name: str, *, field: str | None = None) -> str:
        """Bare or qualified name -> qualified name; ConfigError if unknown or ambiguous."""
        if name in self._by_q:
            return name
        if name in self.aliases:
            return self.aliases[name]
        if name in self._ambiguous:
            raise ConfigError(
                f"parameter name {name!r} is ambiguous: write one of "
                f"{', '.join(q.replace('::', '.') for q in self._ambiguous[name])}",
                file=self.file,
                field=field,
            )
        raise ConfigError(f"unknown parameter {name!r}", file=self.file, field=field)

    def has(self, name: str) -> bool:
        return name in self._by_q or name in self.aliases or name in self._ambiguous

    def __getitem__(self, qualified: str) -> Parameter:
        return self._by_q[qualified]

    @classmethod
    def from_spec(cls, spec) -> ParameterModel:
        """Build from a :class:`~eftflow.inference.scan.config.ScanSpec`, checking every prior."""
        file = spec.file
        models = spec.data["models"]
        params: list[Parameter] = []
        for mname, model in models.items():
            parent = model.get("parent")
            if parent is not None and parent not in models:
                raise ConfigError(
                    f"parent model {parent!r} is not declared (models: {', '.join(models)})",
                    file=file,
                    field=f"models.{mname}.parent",
                )
            for pname, pdef in model["parameters"].items():
                params.append(_make_parameter(mname, pname, pdef, file))
        return cls(params, file=file)

    def transform(self, unit: np.ndarray) -> dict[str, np.ndarray]:
        """Map unit-cube points ``(n, ndim)`` to ``{qualified name: values (n,)}``."""
        unit = np.atleast_2d(np.asarray(unit, dtype=float))
        n = unit.shape[0]
        values: dict[str, np.ndarray] = {}
        view = _AliasView(values, self.aliases)
        index = {p.qualified: i for i, p in enumerate(self.sampled)}
        for q in self.order:
            p = self._by_q[q]
            hyper = {
                k: (v(view) if isinstance(v, Expression) else v)
                for k, v in p.hyper.items()
                if k != "expr"
            }
            if p.prior == "fixed":
                values[q] = np.full(n, float(hyper["value"]))
            elif p.prior == "derived":
                values[q] = np.broadcast_to(
                    np.asarray(p.hyper["expr"](view), dtype=float), (n,)
                ).copy()
            else:
                values[q] = np.broadcast_to(transform(p.prior, unit[:, index[q]], **hyper), (n,))
        return values


class _AliasView(dict):
    """Read-only lookup by qualified or unique bare name, for expressions."""

    def __init__(self, values, aliases):
        super().__init__()
        self._values, self._aliases = values, aliases

    def __getitem__(self, key):
        if key in self._values:
            return self._values[key]
        return self._values[self._aliases[key]]


def _number(value, file, field) -> float:
    if not np.isfinite(value):
        raise ConfigError("expected a finite number", file=file, field=field)
    return float(value)


def _make_parameter(model: str, name: str, pdef: dict, file: str | None) -> Parameter:
    base = f"models.{model}.parameters.{name}"
    prior = pdef["prior"]
    allowed = {
        "flat": {"range"},
        "log": {"range"},
        "gaussian": {"mean", "sigma", "range"},
        "lognormal": {"mean", "sigma", "range"},
        "fixed": {"value"},
        "derived": {"expr"},
    }[prior]
    extra = sorted(set(pdef) - allowed - {"prior"})
    if extra:
        raise ConfigError(
            f"key not used by prior {prior!r} (it takes: {', '.join(sorted(allowed))})",
            file=file,
            field=f"{base}.{extra[0]}",
        )
    hyper: dict = {}
    if "range" in pdef:
        lo, hi = (_number(v, file, f"{base}.range") for v in pdef["range"])
        if not lo < hi:
            raise ConfigError(
                f"range must be [lower, upper] with lower < upper, got [{lo}, {hi}]",
                file=file,
                field=f"{base}.range",
            )
        if not np.isfinite(hi - lo):
            raise ConfigError(
                f"range [{lo}, {hi}] is too wide: its width overflows float64",
                file=file,
                field=f"{base}.range",
            )
        if prior == "log" and lo <= 0:
            raise ConfigError(
                f"a log prior needs a positive range, got lower = {lo}",
                file=file,
                field=f"{base}.range",
            )
        hyper["range"] = (lo, hi)
    for key in ("mean", "sigma"):
        if key in pdef:
            val = pdef[key]
            if isinstance(val, str):
                hyper[key] = Expression.parse(val, file=file, field=f"{base}.{key}")
            else:
                hyper[key] = _number(val, file, f"{base}.{key}")
                if key == "sigma" and hyper[key] <= 0:
                    raise ConfigError(
                        f"sigma must be positive, got {val}", file=file, field=f"{base}.sigma"
                    )
    if prior == "lognormal" and "range" in hyper and hyper["range"][0] <= 0:
        raise ConfigError(
            "a lognormal prior needs a positive range", file=file, field=f"{base}.range"
        )
    if prior == "fixed":
        hyper["value"] = _number(pdef["value"], file, f"{base}.value")
    if prior == "derived":
        hyper["expr"] = Expression.parse(pdef["expr"], file=file, field=f"{base}.expr")
    return Parameter(model=model, name=name, prior=prior, hyper=hyper)
