"""Scale- and PDF-variation weights of the generator → nuisance weights of the setup's systematics.

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
ratio, which never depends on the EFT parameters, times an α_s ratio, which does not either when
all amplitudes share one power of α_s (as in Drell–Yan or any purely electroweak operator): then
this is exact. MadMiner stores the raw ``w_var``, which is right only for samples generated at the
reference benchmark.

**PDF sets.** A ``pdf`` systematic (``pdf_variation``: the LHAPDF set name, or its LHAPDF id) has
one nuisance parameter ``<name>_nuisance_param_0``, two-sided, for the set's whole uncertainty:
its members are the weights of the weight group named after the set (MadGraph writes one group
per set, ``combine`` = the set's LHAPDF error type), ordered by their ``PDF`` id, central member
first. Per event, the relative uncertainty r = δ/w₀ is

* ``replicas``: δ = standard deviation of the replicas (members 1…N);
* ``symmhessian``: δ = √Σ_k (w_k − w₀)²;
* ``hessian`` (asymmetric eigenvector pairs 2j−1, 2j): δ = ½ √Σ_j (w_{2j−1} − w_{2j})²;

(a ``+as`` suffix: the last two members, the α_s variations, are left out), and the nuisance
weights are w_ref · e^{±r}: a log-normal of width r, always positive. With ``pdf_members=N`` in
the setup the set has instead, as MadMiner, one one-sided nuisance parameter per member,
``<name>_nuisance_param_k`` (k = 1 … N, the members after the central one in PDF-id order), whose
weight is w_ref · w_k / w₀; the file's group must hold exactly N such members.

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
    "PDF_ERROR_TYPES",
    "scale_points",
    "scale_variations",
    "nuisance_weight_ids",
    "pdf_members",
    "pdf_relative_uncertainty",
    "NuisanceWeights",
    "nuisance_weights",
    "lhe_nuisance_weights",
    "nuisance_columns",
]

#: LHAPDF error types a PDF weight group may declare (``combine``), optionally with ``+as``
PDF_ERROR_TYPES = ("replicas", "hessian", "symmhessian")

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


def _plain(w) -> tuple[float, float, int | None] | None:
    """(μ_R, μ_F, PDF id) of a weight that varies scales or the PDF member only; else None.

    None for reweighting weights, varied dynamical scale choices (``DYN_SCALE``) and
    emission-scale variations (``ALPSFACT`` ≠ 1). Missing MUR/MUF count as 1.
    """
    if "mg_reweighting" in (w.group or "").lower():
        return None
    a = w.attrs
    if not any(k in a for k in ("MUR", "MUF", "PDF", "mur", "muf", "pdf")):
        return None
    mur, muf = _factor(a, "MUR"), _factor(a, "MUF")
    dyn = next((a[k] for k in _DYN_KEYS if k in a), None)
    if dyn is not None and str(dyn).strip() not in ("-1", ""):
        return None  # a different dynamical scale choice, not a scale variation
    alps = _factor(a, "ALPSFACT")
    if alps is not None and not _close(alps, 1.0):
        return None  # emission-scale variation
    pdf = a.get("PDF", a.get("pdf"))
    try:
        pdf = None if pdf is None else int(float(pdf))
    except ValueError:
        return None
    return (1.0 if mur is None else mur), (1.0 if muf is None else muf), pdf


def _candidates(weights: Sequence, central_pdf: int | None) -> list[tuple[str, float, float]]:
    """(id, μ_R, μ_F) of the weights that are pure scale variations of the central PDF."""
    out = []
    for w in weights:
        p = _plain(w)
        if p is None or not any(k in w.attrs for k in ("MUR", "MUF", "mur", "muf")):
            continue
        mur, muf, pdf = p
        if central_pdf is not None and pdf is not None and pdf != central_pdf:
            continue
        out.append(("scale variation" not in (w.group or "").lower(), w.id, mur, muf))
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


def pdf_members(weights: Sequence, pdf_set: str, *, file=None) -> tuple[str, list[str]]:
    """(error type, member weight ids with the central member first) of a PDF set.

    The members are the plain weights (no scale variation) of the weight groups whose name
    contains ``pdf_set`` (case-insensitive; an LHAPDF id matches the central member's ``PDF``
    attribute instead), ordered by ``PDF`` id. The error type is the group's ``combine``
    attribute (:data:`PDF_ERROR_TYPES`, optionally ``+as``: the last two members, α_s variations,
    are then dropped). Missing or malformed groups are an :class:`~eftflow.errors.InputError`.
    """
    key = str(pdf_set).strip()
    by_id = key.isdigit()
    groups: dict[str, list] = {}
    for w in weights:
        p = _plain(w)
        g = w.group or ""
        if p is None or p[2] is None or "scale variation" in g.lower():
            continue
        if not (_close(p[0], 1.0) and _close(p[1], 1.0)):
            continue
        if by_id or key.lower() in g.lower():
            groups.setdefault(g, []).append((p[2], w))
    if by_id:
        groups = {g: m for g, m in groups.items() if min(pid for pid, _ in m) == int(key)}
    where = {"file": None if file is None else str(file), "field": "initrwgt"}
    if not groups:
        names = sorted({w.group for w in weights if w.group and _plain(w) is not None})
        raise InputError(
            f"no weight group of the PDF set {key!r} (groups with PDF weights: "
            f"{', '.join(names) or 'none'}; MadGraph writes them with use_syst = True, LHAPDF "
            "and --pdf in systematics_arguments)",
            **where,
        )
    if len(groups) > 1:
        raise InputError(
            f"several weight groups match the PDF set {key!r}: {', '.join(groups)}; name it "
            "exactly (or by its LHAPDF id)",
            **where,
        )
    ((group, members),) = groups.items()
    members.sort(key=lambda m: m[0])
    combine = str(members[0][1].group_attrs.get("combine", "")).strip().lower()
    kind, _, extra = combine.partition("+")
    ids = [w.id for _, w in members]
    if extra == "as":
        ids = ids[:-2]
    elif extra:
        kind = combine
    need = {"replicas": 3, "symmhessian": 2, "hessian": 3}
    if kind not in need:
        raise InputError(
            f"PDF weight group {group!r} has combine={combine!r}; expected one of "
            f"{', '.join(PDF_ERROR_TYPES)} (optionally +as)",
            **where,
        )
    if len(ids) < need[kind] or (kind == "hessian" and len(ids) % 2 == 0):
        raise InputError(
            f"PDF weight group {group!r} ({kind}) has {len(ids)} members: too few"
            + (
                " (hessian needs a central member and eigenvector pairs)"
                if kind == "hessian"
                else ""
            ),
            **where,
        )
    return kind, ids


def pdf_relative_uncertainty(members: np.ndarray, error_type: str) -> np.ndarray:
    """Per-event relative PDF uncertainty δ/w₀ from the member weights (n, K), central first.

    See the module docstring for δ; events with w₀ = 0 get 0.
    """
    m = np.asarray(members, np.float64)
    w0, rest = m[:, 0], m[:, 1:]
    if error_type == "replicas":
        delta = rest.std(axis=1, ddof=1)
    elif error_type == "symmhessian":
        delta = np.sqrt(np.sum((rest - w0[:, None]) ** 2, axis=1))
    elif error_type == "hessian":
        delta = 0.5 * np.sqrt(np.sum((rest[:, 0::2] - rest[:, 1::2]) ** 2, axis=1))
    else:
        raise InputError(f"unknown PDF error type {error_type!r}", field="initrwgt")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w0 != 0.0, delta / np.abs(w0), 0.0)


class NuisanceWeights:
    """How the nuisance benchmarks' weight columns are made from an LHE file's weights.

    ``names``: the nuisance benchmarks, in setup order; ``ids``: the LHE weight ids they need;
    :meth:`columns` turns those weights (one column per id) into the nuisance columns. Falsy
    when the setup has no scale or PDF systematics.
    """

    def __init__(
        self,
        scale: dict[str, str] | None = None,
        pdf: dict | None = None,
        order=(),
        members: dict | None = None,
    ):
        self.scale = dict(scale or {})
        #: {benchmark: (error type, member ids, sign)}
        self.pdf = dict(pdf or {})
        #: {benchmark: (central member id, member id)}: one PDF member per nuisance parameter
        self.members = dict(members or {})
        known = [*self.scale, *self.pdf, *self.members]
        self.names = [n for n in order if n in known] + [n for n in known if n not in order]
        ids: list[str] = list(self.scale.values())
        for _, members_, _ in self.pdf.values():
            ids += members_
        for central, member in self.members.values():
            ids += [central, member]
        self.ids = list(dict.fromkeys(ids))

    def __bool__(self) -> bool:
        return bool(self.names)

    def __repr__(self) -> str:
        return (
            f"NuisanceWeights(scale={self.scale}, pdf={ {k: v[0] for k, v in self.pdf.items()} })"
        )

    def columns(
        self, weights, nominal, reference, *, file=None, first_event: int = 0
    ) -> np.ndarray:
        """Nuisance columns (n, len(names)) from ``weights`` (n, len(ids)), XWGTUP, w_ref."""
        weights = np.asarray(weights, np.float64)
        reference = np.asarray(reference, np.float64)
        col = {i: k for k, i in enumerate(self.ids)}
        out = np.empty((len(reference), len(self.names)))
        if self.scale:
            sc = [col[self.scale[n]] for n in self.names if n in self.scale]
            var = nuisance_columns(
                weights[:, sc], nominal, reference, file=file, first_event=first_event
            )
            for j, n in enumerate(n for n in self.names if n in self.scale):
                out[:, self.names.index(n)] = var[:, j]
        rel: dict[tuple, np.ndarray] = {}
        for n, (kind, members, sign) in self.pdf.items():
            key = (kind, tuple(members))
            if key not in rel:
                r = pdf_relative_uncertainty(weights[:, [col[i] for i in members]], kind)
                if not np.all(np.isfinite(r)):
                    i = int(np.flatnonzero(~np.isfinite(r))[0])
                    raise InputError(
                        f"event {first_event + i}: non-finite PDF member weights",
                        file=None if file is None else str(file),
                        field="rwgt",
                    )
                rel[key] = r
            out[:, self.names.index(n)] = reference * np.exp(sign * rel[key])
        for n, (central, member) in self.members.items():
            out[:, self.names.index(n)] = nuisance_columns(
                weights[:, [col[member]]], weights[:, col[central]], reference,
                file=file, first_event=first_event, what="PDF-member",
            )[:, 0]  # fmt: skip
        return out


def nuisance_weights(
    setup, weights: Sequence, *, central_pdf: int | None = None, file=None
) -> NuisanceWeights:
    """:class:`NuisanceWeights` of the setup's ``scale`` and ``pdf`` systematics for these LHE
    weights (errors as :func:`nuisance_weight_ids` and :func:`pdf_members`)."""
    scale = nuisance_weight_ids(setup, weights, central_pdf=central_pdf, file=file)
    pdf, per_member, order = {}, {}, []
    found: dict[str, tuple[str, list[str]]] = {}
    for nu in setup.nuisance_parameters.values():
        order += [b for b in (nu.benchmark_positive, nu.benchmark_negative) if b]
        syst = setup.systematics.get(nu.systematic)
        if syst is None or syst.type != "pdf":
            continue
        if syst.name not in found:
            found[syst.name] = pdf_members(weights, syst.value, file=file)
        kind, members = found[syst.name]
        if nu.benchmark_negative is not None:  # one parameter for the set
            for bench, sign in ((nu.benchmark_positive, 1.0), (nu.benchmark_negative, -1.0)):
                pdf[bench] = (kind, members, sign)
            continue
        declared = sum(q.systematic == syst.name for q in setup.nuisance_parameters.values())
        if declared != len(members) - 1:  # one parameter per member (setup pdf_members)
            raise InputError(
                f"the setup declares {declared} members of the PDF set {syst.value!r} "
                f"(pdf_members), the file's weight group has {len(members) - 1} after the "
                "central one",
                file=None if file is None else str(file),
                field=f"systematics.{syst.name}.pdf_members",
            )
        k = int(nu.name.rsplit("_", 1)[1])
        per_member[nu.benchmark_positive] = (members[0], members[k])
    return NuisanceWeights(scale, pdf, order, per_member)


def lhe_nuisance_weights(setup, path) -> NuisanceWeights:
    """:func:`nuisance_weights` from the header of the LHE file ``path`` (without scale or PDF
    systematics in the setup the file is not opened)."""
    if not any(s.type in ("scale", "pdf") for s in setup.systematics.values()):
        return NuisanceWeights()
    from eftflow.generate.lhe import read_lhe_header

    header = read_lhe_header(path)
    pdfs = {int(x) for x in header.init.pdf_sets if int(x) > 0}
    central = pdfs.pop() if len(pdfs) == 1 else None
    return nuisance_weights(setup, header.weights, central_pdf=central, file=path)


def nuisance_columns(
    weights: np.ndarray,
    nominal: np.ndarray,
    reference: np.ndarray,
    *,
    file=None,
    first_event: int = 0,
    what: str = "scale-variation",
) -> np.ndarray:
    """``reference · weights / nominal`` per event and column (see the module docstring).

    ``weights`` (n, k): the varied weights; ``nominal`` (n,): the events' generated weight
    (XWGTUP); ``reference`` (n,): their weight at the reference benchmark. An event with nominal
    weight 0 gets 0 (its varied weights must then be 0 too); a non-finite ratio, or one ≤ 0 (a
    variation flipping the sign of a weight: no log-normal interpolation can hold it), is an
    :class:`~eftflow.errors.InputError` naming the event.
    """
    weights = np.asarray(weights, np.float64)
    nominal = np.asarray(nominal, np.float64)
    zero = nominal == 0.0
    bad = zero[:, None] & (weights != 0.0)
    if bad.any():
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        raise InputError(
            f"event {first_event + i}: {what} weight {weights[i][bad[i]][0]!r} with a "
            "nominal weight of 0",
            file=None if file is None else str(file),
            field="rwgt",
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = weights / np.where(zero, 1.0, nominal)[:, None]
    flip = ~zero[:, None] & (ratio <= 0.0)
    if flip.any():
        i = int(np.flatnonzero(flip.any(axis=1))[0])
        raise InputError(
            f"event {first_event + i}: {what} weight {weights[i][flip[i]][0]!r} against "
            f"the nominal {nominal[i]!r}: a variation must keep the weight's sign",
            file=None if file is None else str(file),
            field="rwgt",
        )
    out = np.where(zero[:, None], 0.0, ratio)
    out *= np.asarray(reference, np.float64)[:, None]
    if not np.all(np.isfinite(out)):
        i = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise InputError(
            f"event {first_event + i}: non-finite {what} weight",
            file=None if file is None else str(file),
            field="rwgt",
        )
    return out
