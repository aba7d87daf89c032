"""Scale-variation weights of the generator → nuisance weights of the setup's ``scale`` systematics.

A ``scale`` systematic of the setup (:meth:`eftflow.setup.EFTSetup.add_systematics`, MadMiner's
naming) has one nuisance parameter ``<name>_nuisance_param_0`` with the benchmark
``…_benchmark_0`` at ν = +1 (the *last* scale factor of its variations, e.g. 2 for
``0.5, 1, 2``) and ``…_benchmark_1`` at ν = −1 (the *first*, e.g. 0.5); a single variation is
one-sided. ``scale`` is ``mu`` (μ_R and μ_F together), ``mur`` or ``muf``.

The generator writes the varied weights as LHE weights: MadGraph's systematics module (run card
``use_syst = True``) and the builtin generator both write a weight group named
``Central scale variation`` whose weights carry ``MUR`` and ``MUF`` attributes::

    <weightgroup name="Central scale variation" combine="envelope">
    <weight id="1" MUR="0.5" MUF="0.5" PDF="247000" > MUR=0.5 MUF=0.5 </weight>
    <weight id="8" MUR="2.0" MUF="2.0" PDF="247000" > MUR=2.0 MUF=2.0 </weight>
    ...

:func:`nuisance_weight_ids` finds, for each nuisance benchmark, the weight with the matching
(μ_R, μ_F) factors (MadMiner's ``_extract_nuisance_param_dict`` rules: weights of
``mg_reweighting`` and weights that vary the dynamical scale choice, ``DYN_SCALE``, are skipped;
so are variations of the shower's emission scale, ``ALPSFACT`` ≠ 1, and weights of a PDF other
than the central one).

**Nominal.** The varied weights are those of the *sampling* point (the generated events'
``XWGTUP``), while nuisance weights are variations of the setup's *reference* benchmark
(:attr:`~eftflow.setup.EFTSetup.reference_benchmark`, the nominal of MadMiner's
``NuisanceMorpher``). :func:`nuisance_columns` therefore writes

    w_ν(event) = w_ref(event) · w_var(event) / XWGTUP(event),

the event's scale factor applied to its reference weight. At leading order the factor is a PDF
and α_s ratio that does not depend on the EFT parameters, so this is exact; MadMiner stores the raw
``w_var``, which is right only for samples generated at the reference benchmark.

Example
-------
>>> from eftflow.generate.lhe_header import WeightInfo
>>> from eftflow.setup import EFTSetup
>>> s = EFTSetup()
>>> s.add_parameter("eft", 1, "c", parameter_range=(-1.0, 1.0))
>>> s.add_benchmark({"c": 0.0}, "sm", verbose=False)
>>> s.add_systematics("scale", "scale_mu", scale="mu", scale_variations=(0.5, 1.0, 2.0))
>>> group = "Central scale variation"
>>> ws = [WeightInfo(str(i), group, "", {"MUR": r, "MUF": f})
...       for i, (r, f) in enumerate([("0.5", "0.5"), ("2.0", "2.0")], start=1)]
>>> nuisance_weight_ids(s, ws)
{'scale_mu_nuisance_param_0_benchmark_0': '2', 'scale_mu_nuisance_param_0_benchmark_1': '1'}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from eftflow.errors import InputError

__all__ = [
    "SCALE_GROUP",
    "scale_points",
    "scale_variations",
    "nuisance_weight_ids",
    "lhe_nuisance_weight_ids",
    "nuisance_columns",
]

#: the weight-group name MadGraph's systematics module gives its scale variations
SCALE_GROUP = "Central scale variation"

_DYN_KEYS = ("DYN_SCALE", "dyn_scale", "DYNSCALE", "dynscale")


def scale_points(syst) -> list[tuple[float, float]]:
    """(μ_R, μ_F) factors at ν = +1 and, if two-sided, ν = −1 of a ``scale`` systematic.

    MadMiner's choice: the last factor of the variations is ν = +1, the first is ν = −1.
    """
    factors = [float(v) for v in str(syst.value).split(",") if v.strip()]
    chosen = (factors[-1],) if len(factors) == 1 else (factors[-1], factors[0])
    out = []
    for k in chosen:
        mur = k if syst.scale in ("mu", "mur") else 1.0
        muf = k if syst.scale in ("mu", "muf") else 1.0
        out.append((mur, muf))
    return out


def scale_variations(setup) -> list[tuple[float, float]]:
    """Every (μ_R, μ_F) pair the setup's ``scale`` systematics need, in first-use order."""
    out: list[tuple[float, float]] = []
    for syst in setup.systematics.values():
        if syst.type == "scale":
            for pt in scale_points(syst):
                if pt not in out:
                    out.append(pt)
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9)


def _factor(attrs: dict, key: str) -> float | None:
    for k in (key, key.lower()):
        if k in attrs:
            try:
                return float(attrs[k])
            except ValueError:
                return None
    return None


def _candidates(weights: Sequence, central_pdf: int | None) -> list[tuple[str, float, float]]:
    """(id, μ_R, μ_F) of the weights that are pure scale variations of the central PDF."""
    out = []
    for w in weights:
        group = (w.group or "").lower()
        if "mg_reweighting" in group:
            continue
        a = w.attrs
        mur, muf = _factor(a, "MUR"), _factor(a, "MUF")
        if mur is None or muf is None:
            continue
        dyn = next((a[k] for k in _DYN_KEYS if k in a), None)
        if dyn is not None and str(dyn).strip() not in ("-1", ""):
            continue  # a different dynamical scale choice, not a scale variation
        alps = _factor(a, "ALPSFACT")
        if alps is not None and not _close(alps, 1.0):
            continue  # emission-scale variation
        pdf = a.get("PDF", a.get("pdf"))
        if central_pdf is not None and pdf is not None:
            try:
                if int(float(pdf)) != central_pdf:
                    continue
            except ValueError:
                continue
        out.append(("scale variation" not in group, w.id, mur, muf))
    # weights of a group named like MadGraph's scale group first (stable otherwise)
    out.sort(key=lambda c: c[0])
    return [c[1:] for c in out]


def nuisance_weight_ids(
    setup, weights: Sequence, *, central_pdf: int | None = None, file=None
) -> dict[str, str]:
    """``{nuisance benchmark: LHE weight id}`` for the setup's ``scale`` systematics.

    ``weights`` are the ``<initrwgt>`` weights (:class:`~eftflow.generate.lhe_header.WeightInfo`
    with their attributes); ``central_pdf`` the LHAPDF id of the ``<init>`` block (weights of
    other PDF sets are then skipped). A scale systematic without matching weights is an
    :class:`~eftflow.errors.InputError` naming the missing (μ_R, μ_F) and how to make them.
    Returns ``{}`` when the setup has no scale systematics.
    """
    cands = None
    out: dict[str, str] = {}
    for nu in setup.nuisance_parameters.values():
        syst = setup.systematics.get(nu.systematic)
        if syst is None or syst.type != "scale":
            continue
        if cands is None:
            cands = _candidates(weights, central_pdf)
        benches = [nu.benchmark_positive, nu.benchmark_negative]
        for bench, (mur, muf) in zip(benches, scale_points(syst)):
            if bench is None:
                continue
            found = next((i for i, r, f in cands if _close(r, mur) and _close(f, muf)), None)
            if found is None:
                have = sorted({(r, f) for _, r, f in cands})
                raise InputError(
                    f"scale systematic {syst.name!r} needs a weight with MUR={mur:g} MUF={muf:g} "
                    f"(benchmark {bench}); the file has "
                    + (
                        "scale variations " + ", ".join(f"({r:g}, {f:g})" for r, f in have)
                        if have
                        else "no scale-variation weights"
                    )
                    + " (MadGraph writes them with use_syst = True and LHAPDF; the builtin "
                    "generator writes those of the setup it is given)",
                    file=None if file is None else str(file),
                    field="initrwgt",
                )
            out[bench] = found
    return out


def lhe_nuisance_weight_ids(setup, path) -> dict[str, str]:
    """:func:`nuisance_weight_ids` from the header of the LHE file ``path`` ({} without scale
    systematics; the file is then not opened)."""
    if not any(s.type == "scale" for s in setup.systematics.values()):
        return {}
    from eftflow.generate.lhe import read_lhe_header

    header = read_lhe_header(path)
    pdfs = {int(x) for x in header.init.pdf_sets if int(x) > 0}
    central = pdfs.pop() if len(pdfs) == 1 else None
    return nuisance_weight_ids(setup, header.weights, central_pdf=central, file=path)


def nuisance_columns(
    weights: np.ndarray,
    nominal: np.ndarray,
    reference: np.ndarray,
    *,
    file=None,
    first_event: int = 0,
) -> np.ndarray:
    """``reference · weights / nominal`` per event and column (see the module docstring).

    ``weights`` (n, k): the varied weights; ``nominal`` (n,): the events' generated weight
    (XWGTUP); ``reference`` (n,): their weight at the reference benchmark. An event with nominal
    weight 0 gets 0 (its varied weights must then be 0 too); a non-finite ratio is an
    :class:`~eftflow.errors.InputError` naming the event.
    """
    weights = np.asarray(weights, np.float64)
    nominal = np.asarray(nominal, np.float64)
    zero = nominal == 0.0
    bad = zero[:, None] & (weights != 0.0)
    if bad.any():
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        raise InputError(
            f"event {first_event + i}: scale-variation weight {weights[i][bad[i]][0]!r} with a "
            "nominal weight (XWGTUP) of 0",
            file=None if file is None else str(file),
            field="rwgt",
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(zero[:, None], 0.0, weights / np.where(zero, 1.0, nominal)[:, None])
    out *= np.asarray(reference, np.float64)[:, None]
    if not np.all(np.isfinite(out)):
        i = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise InputError(
            f"event {first_event + i}: non-finite scale-variation weight",
            file=None if file is None else str(file),
            field="rwgt",
        )
    return out
