"""Module functions, their registry, and the dependency resolver (GAMBIT's, in small).

A *scan function* is a Python function registered with :func:`scan_function`; it declares the
capability (quantity) it provides and the capabilities it depends on. A scan file instantiates
functions as *components* (``components: {key: {function: ..., options: ...}}``); parameters
provide capabilities too (``cW`` and ``EFT::cW``). At start-up :func:`resolve` walks the
requirements from the requested likelihoods, picks one provider per capability, and orders
the chosen components so that each runs after what it needs. It fails before the first point,
naming the requirement, the requester and the candidates, when a provider is missing or
ambiguous (ties are broken by ``rules: {capability: component}``) or when the dependencies form
a cycle.

A function is called as ``fn(inputs, options)``: ``inputs`` maps each dependency name (as
declared) to its value for the current point, ``options`` are the component's options after
schema defaults and the function's ``setup`` hook. It returns a float (a log-likelihood for
``kind="likelihood"``) or raises :class:`InvalidPoint`; NaN also marks the point invalid.

User functions are referenced as ``"module:function"``. They are never looked up by evaluating
that string: the module must be listed under ``imports:`` (importing it runs the decorators) or
expose the function through the entry-point group ``eftflow.scan_functions``, and the function
must have been registered with the decorator.

Example
-------
>>> @scan_function(capability="doubled", dependencies=["x"], name="doc_example_double")
... def double(inputs, options):
...     return 2.0 * inputs["x"]
>>> get_function("doc_example_double").capability
'doubled'
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eftflow.errors import ConfigError, EftflowError

__all__ = [
    "InvalidPoint",
    "ScanFunction",
    "Component",
    "scan_function",
    "get_function",
    "registered_functions",
    "import_modules",
    "build_components",
    "resolve",
    "ENTRY_POINT_GROUP",
]

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "eftflow.scan_functions"


class InvalidPoint(Exception):  # noqa: N818 - GAMBIT's name
    """Raised by a scan function when the model point is invalid (printed, floor likelihood)."""


@dataclass(frozen=True)
class ScanFunction:
    """A registered module function.

    Attributes
    ----------
    name
        Registry key: a built-in's short name or ``"module:function"``.
    fn
        ``fn(inputs, options) -> float``.
    capability
        Capability provided; None means the component's key names it.
    dependencies
        Capabilities needed, or a callable ``options -> list`` for option-driven ones.
    kind
        ``"likelihood"`` (summed into LogLike when requested) or ``"observable"``.
    options_schema
        JSON schema of the options (defaults filled in), or None to pass them as given.
    setup
        ``setup(options, file, field) -> options`` run once at start-up (load files, parse).
    """

    name: str
    fn: Callable[[Mapping[str, Any], Mapping[str, Any]], float]
    capability: str | None = None
    dependencies: tuple[str, ...] | Callable[[Mapping], list[str]] = ()
    kind: str = "observable"
    options_schema: Mapping | None = None
    setup: Callable | None = None
    module: str = "eftflow"


_REGISTRY: dict[str, ScanFunction] = {}


def scan_function(
    *,
    capability: str | None = None,
    dependencies=(),
    kind: str = "observable",
    options_schema: Mapping | None = None,
    setup: Callable | None = None,
    name: str | None = None,
):
    """Decorator registering a module function for scans.

    Parameters
    ----------
    capability
        The capability provided (default: the key of the component using it).
    dependencies
        Names of the capabilities (parameters or other components) it needs, or a callable
        ``options -> list of names``.
    kind
        ``"likelihood"`` or ``"observable"``.
    options_schema
        JSON schema of its options; defaults are filled in.
    setup
        Optional ``setup(options, file, field) -> options`` run once.
    name
        Registry key; default ``"<module>:<qualname>"`` (how scan files reference it).
    """
    if kind not in ("likelihood", "observable"):
        raise ValueError(f"kind must be 'likelihood' or 'observable', not {kind!r}")

    def deco(fn):
        key = name or f"{fn.__module__}:{fn.__qualname__}"
        deps = dependencies if callable(dependencies) else tuple(dependencies)
        _REGISTRY[key] = ScanFunction(
            name=key,
            fn=fn,
            capability=capability,
            dependencies=deps,
            kind=kind,
            options_schema=options_schema,
            setup=setup,
            module="eftflow" if name and ":" not in name else fn.__module__,
        )
        return fn

    return deco


def registered_functions() -> dict[str, ScanFunction]:
    """A copy of the registry (built-ins included)."""
    _load_builtins()
    return dict(_REGISTRY)


def _load_builtins() -> None:
    importlib.import_module("eftflow.inference.scan.likelihoods")


def import_modules(modules, *, file: str | None = None) -> None:
    """Import the scan file's ``imports:`` (their decorators register functions)."""
    for i, mod in enumerate(modules):
        try:
            importlib.import_module(mod)
        except ImportError as err:
            raise ConfigError(
                f"cannot import module {mod!r} ({err})", file=file, field=f"imports[{i}]"
            ) from None


def _from_entry_points(name: str) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name or ep.value == name:
            ep.load()


def get_function(name: str, *, file: str | None = None, field: str | None = None) -> ScanFunction:
    """Look a function up by registry key (built-in name or ``"module:function"``)."""
    _load_builtins()
    if name not in _REGISTRY:
        _from_entry_points(name)
    if name in _REGISTRY:
        return _REGISTRY[name]
    builtins = sorted(k for k in _REGISTRY if ":" not in k and not k.startswith("doc_"))
    if ":" in name:
        msg = (
            f"scan function {name!r} is not registered: decorate it with @scan_function and "
            "list its module under 'imports:' (or expose it in the entry-point group "
            f"{ENTRY_POINT_GROUP!r})"
        )
    else:
        msg = f"unknown component function {name!r} (built-ins: {', '.join(builtins)})"
    raise ConfigError(msg, file=file, field=field)


@dataclass
class Component:
    """A function instantiated by the scan file."""

    key: str
    function: ScanFunction
    capability: str
    dependencies: list[str]
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """GAMBIT's printed name: ``#capability @module::function``."""
        fname = self.function.name.split(":")[-1]
        return f"#{self.capability} @{self.function.module}::{fname}"

    @property
    def is_likelihood(self) -> bool:
        return self.function.kind == "likelihood"

    def __call__(self, inputs: Mapping[str, Any]) -> Any:
        return self.function.fn(inputs, self.options)


def build_components(spec) -> dict[str, Component]:
    """Instantiate every ``components:`` entry: look up, check options, run ``setup``."""
    from eftflow.inference.scan.config import fill_defaults, validate_against

    file = spec.file
    import_modules(spec.data.get("imports", []), file=file)
    out: dict[str, Component] = {}
    for key, entry in spec.data["components"].items():
        base = f"components.{key}"
        func = get_function(entry["function"], file=file, field=f"{base}.function")
        options = dict(entry.get("options", {}))
        if func.options_schema is not None:
            validate_against(options, func.options_schema, file=file, prefix=f"{base}.options")
            options = fill_defaults(options, func.options_schema)
        if func.setup is not None:
            try:
                options = func.setup(options, file, f"{base}.options")
            except EftflowError:
                raise
        deps = func.dependencies(options) if callable(func.dependencies) else func.dependencies
        capability = entry.get("provides") or func.capability or key
        out[key] = Component(key, func, capability, list(deps), options)
    return out


def resolve(
    components: Mapping[str, Component],
    params,
    targets: list[str] | None,
    rules: Mapping[str, str] | None = None,
    *,
    file: str | None = None,
) -> tuple[list[Component], list[str], dict[str, dict[str, tuple[str, str]]]]:
    """Resolve providers and the evaluation order.

    Parameters
    ----------
    components
        Instantiated components by key.
    params
        The :class:`~eftflow.inference.scan.model.ParameterModel` (parameters are providers).
    targets
        Capabilities summed into LogLike; None: every likelihood component's capability.
    rules
        ``{capability: component key}`` choosing among several providers.

    Returns
    -------
    (ordered components, likelihood component keys, bindings)
        ``bindings[key][dep] = ("param", qualified name) or ("component", key)``.
    """
    from eftflow.inference.scan.model import topological_order

    rules = dict(rules or {})
    providers: dict[str, list[str]] = {}
    for key, comp in components.items():
        providers.setdefault(comp.capability, []).append(key)
    for cap, key in rules.items():
        if key not in components:
            raise ConfigError(
                f"rule names component {key!r}, which is not declared",
                file=file,
                field=f"rules.{cap}",
            )
        if components[key].capability != cap:
            raise ConfigError(
                f"component {key!r} provides {components[key].capability!r}, not {cap!r}",
                file=file,
                field=f"rules.{cap}",
            )
    if targets is None:
        targets = list(dict.fromkeys(c.capability for c in components.values() if c.is_likelihood))
        if not targets:
            raise ConfigError("no likelihood component declared", file=file, field="components")
        tfield = "components"
    else:
        tfield = "likelihood"

    def choose(cap: str, requester: str, fld: str) -> tuple[str, str]:
        cands = [("component", k) for k in providers.get(cap, [])]
        if params.has(cap):
            cands.append(("param", params.resolve(cap, field=fld)))
        if cap in rules:
            return ("component", rules[cap])
        if not cands:
            raise ConfigError(
                f"no provider of capability {cap!r} needed by {requester} (no component provides "
                "it and it is not a parameter)",
                file=file,
                field=fld,
            )
        if len(cands) > 1:
            names = ", ".join(f"{k} ({kind})" for kind, k in cands)
            raise ConfigError(
                f"capability {cap!r} needed by {requester} is provided by several candidates: "
                f"{names}; choose one with 'rules: {{{cap}: <component>}}'",
                file=file,
                field=fld,
            )
        return cands[0]

    chosen: dict[str, None] = {}
    bindings: dict[str, dict[str, tuple[str, str]]] = {}
    like_keys: list[str] = []
    work: list[str] = []
    for i, cap in enumerate(targets):
        kind, key = choose(
            cap, "the likelihood", f"{tfield}[{i}]" if tfield == "likelihood" else tfield
        )
        if kind != "component" or not components[key].is_likelihood:
            raise ConfigError(
                f"{cap!r} is not provided by a likelihood component", file=file, field=tfield
            )
        like_keys.append(key)
        work.append(key)
    while work:
        key = work.pop()
        if key in chosen:
            continue
        chosen[key] = None
        comp = components[key]
        bindings[key] = {}
        for dep in comp.dependencies:
            kind, target = choose(dep, f"component {key!r}", f"components.{key}")
            bindings[key][dep] = (kind, target)
            if kind == "component":
                work.append(target)
    deps = {k: {t for kind, t in bindings[k].values() if kind == "component"} for k in chosen}
    order = topological_order(deps, what="components", file=file, field="components")
    unused = [k for k in components if k not in chosen]
    if unused:
        log.info("components not needed by the likelihood (not evaluated): %s", ", ".join(unused))
    return [components[k] for k in order], like_keys, bindings
