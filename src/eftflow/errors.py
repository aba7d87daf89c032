"""Exception hierarchy of eftflow.

Every error a user can trigger with bad input is an :class:`EftflowError`. Each carries the
file and the field (key path, line, column or token) at fault, so the message can say exactly
where to look, and the CLI prints it as one line without a traceback.

Example
-------
>>> err = ConfigError("expected a number", file="config.yaml", field="generation.n_events")
>>> str(err)
'config.yaml: generation.n_events: expected a number'
"""

from __future__ import annotations

__all__ = [
    "EftflowError",
    "ConfigError",
    "InputError",
    "BackendError",
    "MorphingError",
    "ExpressionError",
]


class EftflowError(Exception):
    """Base class of every error eftflow raises on purpose.

    Parameters
    ----------
    message
        What went wrong and what was expected.
    file
        The file at fault, if any.
    field
        Where in that file: a key path (``a.b[2].c``), ``line 12``, a dataset name, a token.
    """

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        return ": ".join([*parts, self.message])


class ConfigError(EftflowError):
    """A configuration file or value is invalid (unknown key, wrong type, bad YAML, ...)."""


class InputError(EftflowError):
    """An input file is missing, malformed, truncated or inconsistent with others."""


class BackendError(EftflowError):
    """An external program or backend (MadGraph, Delphes, Pythia, SLURM, ...) failed."""


class MorphingError(EftflowError):
    """The morphing setup is impossible (too few benchmarks, singular basis, ...)."""


class ExpressionError(ConfigError):
    """A user expression (from a config) is not allowed or cannot be parsed; the message names the token."""
