"""Observables, cuts and efficiencies of an analysis (MadMiner's ``add_observable``/``add_cut``/...).

An :class:`Analysis` is an ordered list of observables (each a safe expression or a registered
Python callable, with a default for events where it is undefined), cuts (boolean expressions:
events failing any cut are removed) and efficiencies (expressions whose value multiplies every
weight of the event). Observables may use earlier observables by name, cuts and efficiencies may
use all observables. :meth:`Analysis.compile` checks everything against the collections of the
input and returns a :class:`CompiledAnalysis` that evaluates a batch of events at once.

Example
-------
>>> ana = Analysis()
>>> ana.add_observable("m_ll", "(l[0] + l[1]).m", required=True)
>>> ana.add_cut("m_ll > 50")
>>> ana.add_efficiency("0.9 if abs(l[0].eta) < 1.5 else 0.8")
>>> ana.observable_names
['m_ll']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from eftflow.analysis.expressions import CONSTANTS, SUM_OBJECTS, EvalContext, Expression, Val
from eftflow.analysis.functions import FUNCTIONS, REDUCTIONS
from eftflow.analysis.objects import EventObjects
from eftflow.errors import ConfigError, InputError

__all__ = [
    "Observable",
    "Cut",
    "Efficiency",
    "Analysis",
    "CompiledAnalysis",
    "ChunkResult",
    "observables_table",
]

log = logging.getLogger(__name__)

_OBS_KEYS = {"name", "definition", "default", "required"}
_CUT_KEYS = {"definition", "default_pass", "name"}
_EFF_KEYS = {"definition", "default", "name"}
_DEFAULT_OBS_KEYS = {
    "n_leptons_max",
    "n_photons_max",
    "n_jets_max",
    "include_met",
    "include_visible_sum",
    "include_numbers",
    "include_charge",
}
_SECTION_KEYS = {"observables", "cuts", "efficiencies", "default_observables", "chunk_size"}


@dataclass
class Observable:
    """One observable: ``definition`` is an expression string or a callable ``fn(EventObjects) -> (n,)``."""

    name: str
    definition: str | Callable
    #: value where the observable is undefined (missing object, division by zero, ...)
    default: float = 0.0
    #: remove events where it is undefined instead of using the default
    required: bool = False


@dataclass
class Cut:
    """A boolean expression; events where it is false are removed."""

    definition: str
    #: whether events where the cut cannot be evaluated pass it
    default_pass: bool = False
    name: str | None = None


@dataclass
class Efficiency:
    """An expression whose value multiplies the event's weights (all benchmarks)."""

    definition: str
    #: value where it cannot be evaluated
    default: float = 1.0
    name: str | None = None


@dataclass
class ChunkResult:
    """What :meth:`CompiledAnalysis.run` returns for one batch."""

    #: (n_pass, n_observables)
    observables: np.ndarray
    #: (n,) bool: events kept
    keep: np.ndarray
    #: (n_pass,) weight factor from the efficiencies
    efficiency: np.ndarray
    #: events passing each cut in turn (cumulative), keyed by cut text
    cutflow: dict[str, int] = field(default_factory=dict)


class Analysis:
    """Observables, cuts and efficiencies (MadMiner's ``LHEReader``/``DelphesReader`` analysis API).

    Parameters
    ----------
    source_file
        Config file quoted in error messages.
    """

    def __init__(self, *, source_file: str | None = None):
        self.observables: list[Observable] = []
        self.cuts: list[Cut] = []
        self.efficiencies: list[Efficiency] = []
        self.source_file = source_file
        self._fields: dict[int, str] = {}

    @property
    def observable_names(self) -> list[str]:
        return [o.name for o in self.observables]

    # -- building ------------------------------------------------------------------------------
    def add_observable(
        self,
        name: str,
        definition: str | Callable,
        required: bool = False,
        default: float | None = 0.0,
        *,
        field: str | None = None,
    ) -> None:
        """Add an observable (expression string or callable of the :class:`EventObjects`)."""
        where = field or f"analysis.observables[{len(self.observables)}]"
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ConfigError(
                f"observable name {name!r} must be an identifier not starting with '_'",
                file=self.source_file,
                field=f"{where}.name",
            )
        reserved = {
            *FUNCTIONS,
            *REDUCTIONS,
            *CONSTANTS,
            *SUM_OBJECTS,
            "e",
            "mu",
            "l",
            "a",
            "j",
            "met",
        }
        if name in reserved or (name.startswith("n_") and name[2:] in reserved):
            raise ConfigError(
                f"observable name {name!r} clashes with an object or function name",
                file=self.source_file,
                field=f"{where}.name",
            )
        if name in self.observable_names:
            raise ConfigError(
                f"duplicate observable name {name!r}", file=self.source_file, field=f"{where}.name"
            )
        if not (isinstance(definition, str) or callable(definition)):
            raise ConfigError(
                f"definition must be an expression string, got {definition!r}",
                file=self.source_file,
                field=f"{where}.definition",
            )
        obs = Observable(
            name,
            definition,
            np.nan if default is None else _number(default, self.source_file, f"{where}.default"),
            _flag(required, self.source_file, f"{where}.required"),
        )
        self._fields[id(obs)] = where
        self.observables.append(obs)

    def add_observable_from_function(
        self, name: str, fn: Callable, required: bool = False, default: float | None = 0.0
    ) -> None:
        """Add an observable computed by ``fn(EventObjects) -> array (n,)`` (NaN = undefined)."""
        self.add_observable(name, fn, required, default)

    def add_cut(
        self, definition: str, default_pass: bool = False, *, field: str | None = None
    ) -> None:
        """Add a cut: events where ``definition`` is false are removed."""
        where = field or f"analysis.cuts[{len(self.cuts)}]"
        cut = Cut(definition, _flag(default_pass, self.source_file, f"{where}.default_pass"))
        self._fields[id(cut)] = field or f"analysis.cuts[{len(self.cuts)}]"
        self.cuts.append(cut)

    def add_efficiency(
        self, definition: str, default: float = 1.0, *, field: str | None = None
    ) -> None:
        """Add an efficiency: its value multiplies every weight of the event."""
        where = field or f"analysis.efficiencies[{len(self.efficiencies)}]"
        value = _number(default, self.source_file, f"{where}.default")
        if not 0 <= value <= 1:
            raise ConfigError(
                f"an efficiency's default must be in [0, 1], got {default!r}",
                file=self.source_file,
                field=f"{where}.default",
            )
        eff = Efficiency(definition, value)
        self._fields[id(eff)] = where
        self.efficiencies.append(eff)

    def add_default_observables(
        self,
        n_leptons_max: int = 2,
        n_photons_max: int = 2,
        n_jets_max: int = 2,
        include_met: bool = True,
        include_visible_sum: bool = True,
        include_numbers: bool = True,
        include_charge: bool = True,
    ) -> None:
        """E, pT, η, φ of the leading objects, MET, visible sum, multiplicities, lepton charges.

        Same names and defaults as MadMiner's ``add_default_observables`` (``et_miss``,
        ``e_l1``, ``pt_j2``, ``n_ls``, ``charge_l1``, ...).
        """
        if include_met:
            self.add_observable("et_miss", "met.pt", required=True)
            self.add_observable("phi_miss", "met.phi", required=True)
        if include_visible_sum:
            self.add_observable("e_visible", "visible.e", required=True)
            self.add_observable("eta_visible", "visible.eta", required=True)
        for n, sym in ((n_leptons_max, "l"), (n_photons_max, "a"), (n_jets_max, "j")):
            if include_numbers:
                self.add_observable(f"n_{sym}s", f"len({sym})", required=True)
            for i in range(int(n)):
                for var in ("e", "pt", "eta", "phi"):
                    self.add_observable(f"{var}_{sym}{i + 1}", f"{sym}[{i}].{var}", default=0.0)
                if include_charge and sym == "l":
                    self.add_observable(f"charge_{sym}{i + 1}", f"{sym}[{i}].charge", default=0.0)

    @classmethod
    def from_config(cls, section: Mapping | None, *, file: str | None = None) -> Analysis:
        """Build from the ``analysis`` config section (see ``docs/analysis.md``)."""
        self = cls(source_file=file)
        section = dict(section or {})
        _check_keys(section, _SECTION_KEYS, "analysis", file)
        if section.get("chunk_size") is not None:
            from eftflow.generate.base import check_count

            check_count(section["chunk_size"], field="analysis.chunk_size", file=file)
        dflt = section.get("default_observables")
        if dflt:
            if dflt is True:
                dflt = {}
            _check_keys(dflt, _DEFAULT_OBS_KEYS, "analysis.default_observables", file)
            self.add_default_observables(**dflt)
        for i, o in enumerate(section.get("observables") or []):
            where = f"analysis.observables[{i}]"
            if not isinstance(o, Mapping):
                raise ConfigError(
                    f"expected a mapping with name and definition, got {o!r}",
                    file=file,
                    field=where,
                )
            _check_keys(o, _OBS_KEYS, where, file)
            if "name" not in o or "definition" not in o:
                raise ConfigError("name and definition are required", file=file, field=where)
            if not isinstance(o["definition"], str):
                raise ConfigError(
                    f"definition must be a string, got {o['definition']!r}",
                    file=file,
                    field=f"{where}.definition",
                )
            self.add_observable(
                o["name"],
                o["definition"],
                o.get("required", False),
                o.get("default", 0.0),
                field=where,
            )
        for kind, add, keys in (
            ("cuts", self.add_cut, _CUT_KEYS),
            ("efficiencies", self.add_efficiency, _EFF_KEYS),
        ):
            for i, c in enumerate(section.get(kind) or []):
                where = f"analysis.{kind}[{i}]"
                if isinstance(c, str):
                    c = {"definition": c}
                if not isinstance(c, Mapping) or not isinstance(c.get("definition"), str):
                    raise ConfigError(
                        f"expected an expression string or {{definition: ...}}, got {c!r}",
                        file=file,
                        field=where,
                    )
                _check_keys(c, keys, where, file)
                extra = {k: v for k, v in c.items() if k in ("default_pass", "default")}
                add(c["definition"], **extra, field=where)
        return self

    def compile(self, schema: Mapping[str, dict] | None = None) -> CompiledAnalysis:
        """Check every expression against ``schema`` (collections and fields) and compile it."""
        if not self.observables:
            raise ConfigError(
                "the analysis defines no observables (add some, or default_observables: true)",
                file=self.source_file,
                field="analysis.observables",
            )
        return CompiledAnalysis(self, schema)


def _number(value, file, field: str) -> float:
    """``value`` as a float (a number, not a string or boolean), else a ConfigError naming ``field``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not ok:
        raise ConfigError(f"expected a number, got {value!r}", file=file, field=field)
    return float(value)


def _flag(value, file, field: str) -> bool:
    """``value`` as a bool, else a ConfigError naming ``field``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"expected true or false, got {value!r}", file=file, field=field)
    return bool(value)


def _check_keys(d: Mapping, allowed: set, where: str, file) -> None:
    if not isinstance(d, Mapping):
        raise ConfigError(f"expected a mapping, got {d!r}", file=file, field=where)
    extra = sorted(set(d) - allowed)
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r}; allowed keys: {', '.join(sorted(allowed))}",
            file=file,
            field=where,
        )


class CompiledAnalysis:
    """An :class:`Analysis` compiled for one object schema; :meth:`run` evaluates a batch."""

    def __init__(self, analysis: Analysis, schema: Mapping[str, dict] | None = None):
        self.analysis = analysis
        file = analysis.source_file
        names: list[str] = []
        self._obs = []
        for o in analysis.observables:
            where = analysis._fields.get(id(o), f"observable {o.name}")
            if callable(o.definition):
                self._obs.append((o, None))
            else:
                expr = Expression(
                    o.definition, schema=schema, values=names, source=(file, f"{where}.definition")
                )
                self._obs.append((o, expr))
            names.append(o.name)
        self._cuts = [
            (
                c,
                Expression(
                    c.definition,
                    schema=schema,
                    values=names,
                    source=(file, f"{analysis._fields.get(id(c), 'cut')}.definition"),
                ),
            )
            for c in analysis.cuts
        ]
        self._effs = [
            (
                e,
                Expression(
                    e.definition,
                    schema=schema,
                    values=names,
                    source=(file, f"{analysis._fields.get(id(e), 'efficiency')}.definition"),
                ),
            )
            for e in analysis.efficiencies
        ]
        self.observable_names = names

    def run(self, objects: EventObjects) -> ChunkResult:
        """Evaluate observables, cuts and efficiencies on a batch of events."""
        n = objects.n_events
        ctx = EvalContext(objects)
        out = np.empty((n, len(self._obs)), dtype=np.float64, order="F")  # contiguous columns
        keep = np.ones(n, dtype=bool)
        cutflow = {}
        for k, (o, expr) in enumerate(self._obs):
            if expr is None:
                data = np.asarray(o.definition(objects), dtype=np.float64).reshape(n)
                valid = np.isfinite(data)
                valid = None if valid.all() else valid
            else:
                v = expr.evaluate(ctx)
                data, valid = v.data, v.valid
            if valid is not None:
                data = np.where(valid, data, o.default)
                if o.required:
                    keep &= valid
            out[:, k] = data
            ctx.values[o.name] = Val(out[:, k])
        cutflow["observables required"] = int(keep.sum())
        for c, expr in self._cuts:
            v = expr.evaluate(ctx)
            passed = v.data.astype(bool)
            if v.valid is not None:
                passed = np.where(v.valid, passed, c.default_pass)
            keep &= passed
            cutflow[c.definition] = int(keep.sum())
        eff = np.ones(n, dtype=np.float64)
        for e, expr in self._effs:
            v = expr.evaluate(ctx)
            data = v.data.astype(np.float64)
            if v.valid is not None:
                data = np.where(v.valid, data, e.default)
            bad = keep & ~((data >= 0) & (data <= 1))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                where = self.analysis._fields.get(id(e), "efficiency")
                raise InputError(
                    f"efficiency {e.definition!r} must be in [0, 1], but is {float(data[i])!r} "
                    f"for {int(bad.sum())} of {int(keep.sum())} events passing the cuts",
                    file=self.analysis.source_file,
                    field=f"{where}.definition",
                )
            eff *= data
        return ChunkResult(out[keep], keep, eff[keep], cutflow)


def observables_table(analysis: Analysis) -> list[dict]:
    """Rows (name, definition, default, required) for docs and logs."""
    return [
        {
            "name": o.name,
            "definition": o.definition if isinstance(o.definition, str) else repr(o.definition),
            "default": o.default,
            "required": o.required,
        }
        for o in analysis.observables
    ]
