"""The Gaussian approximation of a Fisher-information file for fit specs (``gaussian.fisher``)
and the information block of the physics parameters that limits and fits take from it.

Keys of ``gaussian.fisher``: ``file`` (a ``compute-fisher-information`` JSON, relative to the
spec), ``analysis`` (default: the first), ``profiled`` (default true: the nuisance parameters
profiled) and ``others`` (``fixed``, the default, holds the file's parameters that are not
fitted at the reference point; ``profiled`` profiles them: the Schur complement).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from eftflow.errors import InputError

__all__ = ["fisher_gaussian", "fisher_theta_block"]

log = logging.getLogger(__name__)


def fisher_gaussian(sec: dict, names, file) -> tuple[np.ndarray, np.ndarray]:
    """(mean, inverse covariance) from a Fisher-information JSON."""
    from eftflow.inference.specs import check_keys, read_spec

    check_keys(sec, {"file", "analysis", "profiled", "others"}, "gaussian.fisher", file)
    if "file" not in sec:
        raise InputError("missing required key", file=file, field="gaussian.fisher.file")
    others = str(sec.get("others", "fixed"))
    if others not in ("fixed", "profiled"):
        raise InputError(
            f"expected 'fixed' or 'profiled', got {others!r}",
            file=file,
            field="gaussian.fisher.others",
        )
    path = Path(str(sec["file"]))
    if not path.is_absolute() and file is not None:
        path = Path(file).parent / path
    if not path.is_file():
        raise InputError(
            f"Fisher information file {sec['file']} not found ({path})",
            file=file,
            field="gaussian.fisher.file",
        )
    data = read_spec(
        str(path), what="a Fisher information file (fisher_information.json)", doc="docs/fisher.md"
    )
    analyses = data.get("analyses")
    if not isinstance(analyses, dict) or not analyses:
        raise InputError(
            "no analyses in the Fisher information file", file=str(path), field="analyses"
        )
    name = str(sec.get("analysis", next(iter(analyses))))
    if name not in analyses:
        raise InputError(
            f"unknown analysis {name!r}; the file has {', '.join(analyses)}",
            file=file,
            field="gaussian.fisher.analysis",
        )
    entry = analyses[name]
    info, par_names = fisher_theta_block(
        entry, profiled=bool(sec.get("profiled", True)), file=str(path), analysis=name
    )
    missing = [n for n in names if n not in par_names]
    if missing:
        raise InputError(
            f"parameter(s) {', '.join(missing)} not in the Fisher information "
            f"({', '.join(par_names)})",
            file=file,
            field="parameters",
        )
    idx = [par_names.index(n) for n in names]
    theta = data.get("theta") or [0.0] * len(par_names)
    mean = np.asarray(theta, dtype=float)[idx]
    rest = [i for i in range(len(par_names)) if i not in idx]
    block = info[np.ix_(idx, idx)]
    if rest and others == "profiled":  # Schur complement: the others profiled away
        b = info[np.ix_(idx, rest)]
        try:
            block = block - b @ np.linalg.solve(info[np.ix_(rest, rest)], b.T)
        except np.linalg.LinAlgError:
            raise InputError(
                f"the information of {', '.join(par_names[i] for i in rest)} is singular: "
                "they cannot be profiled",
                file=file,
                field="gaussian.fisher.others",
            ) from None
    elif rest:
        log.info(
            "gaussian.fisher: %s fixed at the reference point (others: profiled to profile them)",
            ", ".join(par_names[i] for i in rest),
        )
    return mean, block


def fisher_theta_block(
    entry: dict, *, profiled: bool = True, file: str | None = None, analysis: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """Information matrix of the physics parameters from one analysis of a Fisher JSON.

    With nuisance parameters in the matrix, the profiled block (``entry["profiled"]``, written by
    ``compute-fisher-information`` with unit constraints on the nuisances) is used when
    ``profiled`` is true, otherwise the theta-theta block (nuisances fixed). ``file`` and
    ``analysis`` name the file and analysis in error messages.
    """
    where = f"analyses.{analysis}" if analysis is not None else "analyses"
    try:
        info = np.asarray(entry["information"], dtype=float)
        names = [str(n) for n in entry["parameter_names"]]
    except (KeyError, TypeError, ValueError):
        raise InputError(
            "expected 'information' and 'parameter_names' in the analysis", file=file, field=where
        ) from None
    k = len(names)
    if info.shape != (k, k) or not np.all(np.isfinite(info)):
        raise InputError(
            f"information must be a finite {k}x{k} matrix", file=file, field=f"{where}.information"
        )
    if profiled and entry.get("profiled"):
        p = np.asarray(entry["profiled"]["information"], dtype=float)
        return p, names[: p.shape[0]]
    return info, names
