"""Detector cards: YAML files of per-object efficiencies, resolutions, isolation and jet settings.

A *formula* is a number, a safe expression in the object's true ``pt``, ``eta``, ``e``, ``phi``
(the analysis expression language, e.g. ``"0.95 if abs(eta) < 1.5 else 0.85"``), or a table::

    {eta_edges: [0, 1.5, 2.5], pt_edges: [10, 50, 1e9], values: [[0.9, 0.95], [0.8, 0.85]]}

(rows: |η| bins, columns: pT bins; outside the edges the value is 0). The shipped default card is
``eftflow/data/detector_card.yaml``; :func:`load_card` merges a user card over it key by key.

Example
-------
>>> card = load_card(None)
>>> f = card.formula("muon.efficiency")
>>> [round(float(x), 2) for x in f(pt=[20.0, 20.0], eta=[0.5, 2.0], e=[20.0, 40.0], phi=[0.0, 0.0])]
[0.95, 0.9]
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from eftflow.errors import ConfigError, InputError

__all__ = ["DetectorCard", "Formula", "load_card", "default_card_path"]

VARIABLES = ("pt", "eta", "e", "phi")
_OBJECT_KEYS = {"pt_min", "eta_max", "efficiency", "resolution", "isolation", "fake_rate_jet"}
_ALLOWED = {
    "name": None,
    "invisible_pids": None,
    "electron": _OBJECT_KEYS,
    "muon": _OBJECT_KEYS,
    "photon": _OBJECT_KEYS,
    "jet": {
        "algorithm",
        "R",
        "pt_min",
        "eta_max",
        "input_eta_max",
        "efficiency",
        "resolution",
        "btag",
    },
    "met": {"noise"},
}


def default_card_path() -> Path:
    """The shipped LHC-like card."""
    return Path(str(resources.files("eftflow") / "data" / "detector_card.yaml"))


class Formula:
    """A number, a safe expression in (pt, eta, e, phi) or a (|η|, pT) table, evaluated on arrays."""

    def __init__(
        self, spec, *, file: str | None = None, field: str | None = None, variables=VARIABLES
    ):
        from eftflow.analysis.expressions import Expression

        self.spec = spec
        self.file = file
        self.field = field
        self.variables = tuple(variables)
        self._expr = None
        self._table = None
        self._const = None
        if isinstance(spec, bool):
            raise ConfigError(
                f"expected a number, expression or table, got {spec!r}", file=file, field=field
            )
        if isinstance(spec, (int, float)):
            self._const = float(spec)
        elif isinstance(spec, str):
            self._expr = Expression(spec, schema={}, values=self.variables, source=(file, field))
        elif isinstance(spec, Mapping):
            try:
                eta = np.asarray(spec["eta_edges"], float)
                pt = np.asarray(spec["pt_edges"], float)
                values = np.asarray(spec["values"], float)
            except (KeyError, TypeError, ValueError) as err:
                raise ConfigError(
                    f"a table needs eta_edges, pt_edges and values ({err})", file=file, field=field
                ) from None
            if values.shape != (len(eta) - 1, len(pt) - 1):
                raise ConfigError(
                    f"table values must have shape ({len(eta) - 1}, {len(pt) - 1}) "
                    f"(|eta| bins x pt bins), got {values.shape}",
                    file=file,
                    field=field,
                )
            self._table = (eta, pt, values)
        else:
            raise ConfigError(
                f"expected a number, expression or table, got {spec!r}", file=file, field=field
            )

    def __call__(self, **arrays) -> np.ndarray:
        from eftflow.analysis.expressions import EvalContext, Val
        from eftflow.analysis.objects import EventObjects

        n = len(np.atleast_1d(next(iter(arrays.values()))))
        if self._const is not None:
            return np.full(n, self._const)
        if self._table is not None:
            eta_e, pt_e, values = self._table
            ae, pt = np.abs(np.asarray(arrays["eta"], float)), np.asarray(arrays["pt"], float)
            i = np.searchsorted(eta_e, ae, side="right") - 1
            k = np.searchsorted(pt_e, pt, side="right") - 1
            ok = (i >= 0) & (i < len(eta_e) - 1) & (k >= 0) & (k < len(pt_e) - 1)
            out = np.zeros(n)
            out[ok] = values[i[ok], k[ok]]
            return out
        ctx = EvalContext(
            EventObjects(n, {}), {v: Val(np.asarray(arrays[v], float)) for v in self.variables}
        )
        val = self._expr.evaluate(ctx)
        data = val.data.astype(np.float64)
        return data if val.valid is None else np.where(val.valid, data, 0.0)

    def probability(self, **arrays) -> np.ndarray:
        """Evaluate like ``__call__`` and check that every value is a probability in [0, 1].

        Raises
        ------
        InputError
            Naming the card (or config) file and key when a value is NaN or outside [0, 1]
            for the events at hand.
        """
        p = self(**arrays)
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            at = ", ".join(
                f"{v}={float(np.atleast_1d(arrays[v])[i]):.4g}"
                for v in self.variables
                if v in arrays
            )
            raise InputError(
                f"{self.spec!r} must be a probability in [0, 1], but is {float(p[i])!r} "
                f"for {int(bad.sum())} of {len(p)} objects (first at {at})",
                file=self.file,
                field=self.field,
            )
        return p

    def is_zero(self) -> bool:
        return self._const == 0.0 or (
            isinstance(self.spec, str) and self.spec.strip() in ("0", "0.0")
        )

    def __repr__(self) -> str:
        return f"Formula({self.spec!r})"


class DetectorCard:
    """A validated detector card (nested dict) with :meth:`formula` accessors."""

    def __init__(
        self,
        data: Mapping,
        *,
        file: str | None = None,
        overrides: Mapping | None = None,
        overrides_file: str | None = None,
        overrides_field: str = "detector.builtin.card_overrides",
    ):
        self.data = dict(data)
        self.file = file
        self._override_paths = set(_paths(overrides or {}))
        self._overrides_at = (overrides_file, overrides_field)
        self._check(self.data)
        self._formulas: dict[str, Formula] = {}

    def where(self, path: str) -> dict:
        """``{"file": ..., "field": ...}`` of the card key ``path`` (e.g. ``"muon.efficiency"``).

        A key set by the config's ``card_overrides`` is named there (config file and
        ``detector.builtin.card_overrides.<path>``); any other by the card file (``None`` for a card
        given as a dict) and ``path``.
        """
        parts = path.split(".")
        if any(".".join(parts[:k]) in self._override_paths for k in range(1, len(parts) + 1)):
            file, prefix = self._overrides_at
            return {"file": file, "field": f"{prefix}.{path}"}
        return {"file": self.file, "field": path}

    def _check(self, data: Mapping) -> None:
        for key, value in data.items():
            if key not in _ALLOWED:
                raise ConfigError(
                    f"unknown key {key!r}; allowed: {', '.join(_ALLOWED)}", **self.where(key)
                )
            sub = _ALLOWED[key]
            if sub is not None:
                if not isinstance(value, Mapping):
                    raise ConfigError(f"expected a mapping, got {value!r}", **self.where(key))
                for k in value:
                    if k not in sub:
                        raise ConfigError(
                            f"unknown key {k!r}; allowed: {', '.join(sorted(sub))}",
                            **self.where(f"{key}.{k}"),
                        )
        jet = data.get("jet", {})
        if jet.get("algorithm", "antikt") not in ("antikt", "kt", "cambridge"):
            raise ConfigError(
                f"unknown jet algorithm {jet.get('algorithm')!r}; expected antikt, kt or cambridge",
                **self.where("jet.algorithm"),
            )
        try:
            radius = float(jet.get("R", 0.4))
        except (TypeError, ValueError):
            radius = float("nan")
        if not 0 < radius < 10:
            raise ConfigError(
                f"jet radius R must be a number in (0, 10), got {jet.get('R')!r}",
                **self.where("jet.R"),
            )
        # compile every formula now: errors surface at load time
        for obj in ("electron", "muon", "photon", "jet"):
            o = data.get(obj, {})
            for k in ("efficiency", "fake_rate_jet"):
                if k in o:
                    _check_probability(Formula(o[k], **self.where(f"{obj}.{k}")))
            for q, f in (o.get("resolution") or {}).items():
                if q not in ("pt", "e", "eta", "phi"):
                    raise ConfigError(
                        f"unknown resolution quantity {q!r}; expected pt, e, eta or phi",
                        **self.where(f"{obj}.resolution.{q}"),
                    )
                Formula(f, **self.where(f"{obj}.resolution.{q}"))
            if "pt" in (o.get("resolution") or {}) and "e" in (o.get("resolution") or {}):
                raise ConfigError(
                    "give either a pt or an e resolution, not both",
                    **self.where(f"{obj}.resolution"),
                )
        for k, f in (jet.get("btag") or {}).items():
            if k != "cone":
                _check_probability(Formula(f, **self.where(f"jet.btag.{k}")))
        if "noise" in data.get("met", {}):
            Formula(data["met"]["noise"], variables=("sumet",), **self.where("met.noise"))

    def get(self, path: str, default=None):
        node = self.data
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def formula(self, path: str, default=None, variables=VARIABLES) -> Formula | None:
        """The formula at ``path`` (e.g. ``"muon.efficiency"``), or ``default`` (a number) if absent."""
        if path not in self._formulas:
            spec = self.get(path, default)
            if spec is None:
                return None
            self._formulas[path] = Formula(spec, variables=variables, **self.where(path))
        return self._formulas[path]

    def to_dict(self) -> dict:
        return copy.deepcopy(self.data)


def _check_probability(f: Formula) -> None:
    """A constant or table efficiency outside [0, 1] is a config error at load time."""
    values = None
    if f._const is not None:
        values = np.array([f._const])
    elif f._table is not None:
        values = f._table[2].ravel()
    if values is not None and not ((values >= 0) & (values <= 1)).all():
        bad = values[~((values >= 0) & (values <= 1))][0]
        raise ConfigError(
            f"must be a probability in [0, 1], got {float(bad)!r}", file=f.file, field=f.field
        )


def _paths(tree: Mapping, prefix: str = "") -> list[str]:
    """Dotted paths of every key in a nested mapping."""
    out = []
    for k, v in tree.items():
        p = f"{prefix}{k}"
        out.append(p)
        if isinstance(v, Mapping):
            out += _paths(v, p + ".")
    return out


def _merge(base: dict, over: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_card(
    card: str | Path | Mapping | None = None,
    *,
    overrides: Mapping | None = None,
    config_file: str | None = None,
    overrides_field: str = "detector.builtin.card_overrides",
) -> DetectorCard:
    """Load a card (path, dict or ``None`` for the default), merged over the default card.

    ``overrides`` (the config's ``card_overrides``) are merged last; errors in keys they set
    name ``config_file`` and ``<overrides_field>.<key>``.
    """
    base = yaml.safe_load(default_card_path().read_text())
    file = None
    if card is None:
        data, file = base, str(default_card_path())
    elif isinstance(card, Mapping):
        data = _merge(base, card)
    else:
        file = str(card)
        p = Path(card)
        if not p.is_file():
            raise ConfigError("detector card not found", file=file)
        try:
            user = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"detector card is not valid YAML ({err})", file=file) from None
        if not isinstance(user, Mapping):
            raise ConfigError("detector card must be a mapping", file=file)
        data = _merge(base, user)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigError(
            f"expected a mapping, got {overrides!r}", file=config_file, field=overrides_field
        )
    if overrides:
        data = _merge(data, overrides)
    return DetectorCard(
        data,
        file=file,
        overrides=overrides,
        overrides_file=config_file,
        overrides_field=overrides_field,
    )
