"""Generator backends by name: adding a backend is one module plus one line in ``_BACKENDS``.

Example
-------
>>> get_generator("toy").name
'toy'
>>> sorted(available_generators())
['builtin', 'madgraph', 'toy']
"""

from __future__ import annotations

import importlib

from eftflow.errors import ConfigError
from eftflow.generate.base import Generator

__all__ = ["get_generator", "available_generators"]

#: backend name -> "module:class" (imported lazily, so heavy dependencies load only when used)
_BACKENDS: dict[str, str] = {
    "toy": "eftflow.generate.toy:ToyGenerator",
    "madgraph": "eftflow.generate.madgraph:MadGraphGenerator",
    "builtin": "eftflow.generate.builtin:BuiltinGenerator",
}


def available_generators() -> list[str]:
    """Names of the registered backends."""
    return list(_BACKENDS)


def get_generator(name: str, **kwargs) -> Generator:
    """An instance of the backend ``name`` (``kwargs`` go to its constructor)."""
    try:
        target = _BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown generator backend {name!r}; available: {', '.join(_BACKENDS)}",
            field="generation.backend",
        ) from None
    module, cls = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            raise ConfigError(
                f"generator backend {name!r} is not available in this installation ({module} is missing)",
                field="generation.backend",
            ) from None
        raise
    return getattr(mod, cls)(**kwargs)
