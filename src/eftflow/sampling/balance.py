r"""Balanced training samples: draw events ∝ w(x|θ)·c(x) so that a rare region gets its share.

Unweighting draws events in proportion to the cross section. A region of phase space that holds
0.1 % of σ — the high-mass tail where an EFT operator grows with energy — then gets 0.1 % of
the training samples, however many events were generated there, and a network trained on them
barely sees it. *Balancing* draws from

.. math::

    q(x, z|θ) = \frac{c(x)\, p(x, z|θ)}{Z(θ)}, \qquad Z(θ) = \int c(x)\, p(x|θ)\, dx
              = \frac{\sum_b c_b\, σ_b(θ)}{σ(θ)},

with c(x) = c_b constant in bins b of one observable (chosen by default so that every bin
carries the same share of the reference benchmark's cross section). Every event's weights are
multiplied by c(x_i) before drawing, so r_xz and t_xz are those of q (the joint ratio and score
of q(x, z|θ) = w_i(θ) c_i / Σ_j w_j(θ) c_j), consistent with the drawn samples.

A classifier or ratio regressor trained on balanced samples learns the ratio of q:

.. math::

    \hat r_q(x|θ_0, θ_1) = r(x|θ_0, θ_1)\, \frac{Z(θ_1)}{Z(θ_0)},

the true ratio up to a factor that depends on θ only. Z(θ) is known exactly from the per-bin,
per-benchmark cross sections (σ_b(θ) = Σ_k m_k(θ) σ_{b,k} by morphing), which the training set
records (``attrs.balance``); the ratio estimators trained on it carry the correction
log Z(θ_0) − log Z(θ_1) (:class:`eftflow.ml.models.ProposalCorrection`) and return the true
log r(x|θ_0, θ_1). A c that depends on x only keeps p(z|x) unchanged, which is what makes the
correction exact (a factor per generated sample would not be, where samples overlap in x).

The ratio methods, ``local`` and ``density`` take ``balance``, at nominal ν (Z would depend on
ν event by event). For ``local`` the learned score is t(x) − ∇ log Z(θ), a constant at the set's
one θ: the score estimators trained on it add ∇ log Z(θ) back (:func:`grad_log_z`). For
``density`` the learned density is q(x|θ): the density estimators add log Z(θ) − log c(x)
(:class:`~eftflow.ml.models.DensityCorrection`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from eftflow.errors import ConfigError, InputError

__all__ = [
    "Balance",
    "balance_from_config",
    "bin_cross_sections",
    "balance_record",
    "log_z",
    "grad_log_z",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Balance:
    """c(x) = ``factors[b]`` for ``edges[b-1] <= x[observable] < edges[b]`` (bins open at both ends).

    Given ``shares`` instead (or neither: equal shares), the factors are chosen when the training
    set is drawn, so that bin b carries ``shares[b]`` of the draws at the reference benchmark
    (``reference``; default the setup's).
    """

    observable: str
    edges: tuple[float, ...]
    factors: tuple[float, ...] | None = None
    reference: str | None = None
    shares: tuple[float, ...] | None = None

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1


def balance_from_config(cfg, *, field: str = "balance") -> Balance | None:
    """A :class:`Balance` from ``{observable, edges[, shares | factors, reference]}``; None for
    None, ``{}`` or all keys null (no balancing)."""
    if cfg is None:
        return None
    if isinstance(cfg, Balance):
        return cfg
    if not isinstance(cfg, Mapping):
        raise ConfigError(
            f"expected {{observable, edges[, factors, reference]}}, got {cfg!r}", field=field
        )
    unknown = set(cfg) - {"observable", "edges", "factors", "shares", "reference"}
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))}", field=field)
    if not any(v is not None for v in cfg.values()):  # {} or all null: the config's default
        return None
    obs = cfg.get("observable")
    if not isinstance(obs, str) or not obs:
        raise ConfigError("needs the name of an observable", field=f"{field}.observable")
    edges = cfg.get("edges")
    if not isinstance(edges, Sequence) or isinstance(edges, str) or not edges:
        raise ConfigError(
            "needs a non-empty list of bin edges (the bins below the first and above the last "
            "edge are included)",
            field=f"{field}.edges",
        )
    e = _numbers(edges, "bin edges", f"{field}.edges")
    if not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ConfigError(
            f"bin edges must be finite and increasing, got {list(edges)}", field=f"{field}.edges"
        )
    if cfg.get("factors") is not None and cfg.get("shares") is not None:
        raise ConfigError("give factors or shares, not both", field=field)
    per_bin = {}
    for key in ("factors", "shares"):
        values = cfg.get(key)
        if values is None:
            continue
        fa = _numbers(values, key, f"{field}.{key}")
        if fa.shape != (len(e) + 1,):
            raise ConfigError(
                f"{len(e)} edge(s) make {len(e) + 1} bins, got {fa.size} {key}",
                field=f"{field}.{key}",
            )
        if not np.all(np.isfinite(fa)) or np.any(fa <= 0):
            raise ConfigError(
                f"{key} must be positive and finite, got {list(values)}", field=f"{field}.{key}"
            )
        if key == "shares":
            if abs(fa.sum() - 1.0) > 1e-6:
                raise ConfigError(
                    f"shares must add up to 1, got {list(values)} (sum {fa.sum():.6g})",
                    field=f"{field}.shares",
                )
        per_bin[key] = tuple(float(v) for v in fa)
    ref = cfg.get("reference")
    if ref is not None and not isinstance(ref, str):
        raise ConfigError(
            f"reference must be a benchmark name, got {ref!r}", field=f"{field}.reference"
        )
    return Balance(
        obs, tuple(float(v) for v in e), per_bin.get("factors"), ref, per_bin.get("shares")
    )


def _numbers(values, what: str, field: str) -> np.ndarray:
    try:
        return np.asarray(values, float)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers, got {values!r}", field=field) from None


def bin_of(x: np.ndarray, edges) -> np.ndarray:
    """The bin of each value (0 below the first edge … len(edges) above the last; NaN: last)."""
    return np.searchsorted(np.asarray(edges, float), x, side="right")


def bin_cross_sections(model, balance: Balance) -> tuple[np.ndarray, np.ndarray]:
    """(σ_{b,k}, Σw²_{b,k}): the partition's cross section and sum of squared weights per bin b
    and physics benchmark k (setup order).

    One streamed pass over the partition of ``model`` (a :class:`~eftflow.sampling.weights.WeightModel`
    without balancing), all generated samples mixed (MadMiner's k-factors), ν nominal.
    """
    from eftflow.sampling.weights import load_chunk

    j = observable_index(model, balance)
    out = np.zeros((balance.n_bins, model.n_benchmarks))
    sq = np.zeros_like(out)
    for i0, i1 in model.chunk_ranges():
        ch = load_chunk(model.ctx, i0, i1, None, with_x=True)
        b = bin_of(ch.x[:, j], balance.edges)
        for k in range(model.n_benchmarks):
            out[:, k] += np.bincount(b, weights=ch.W[:, k], minlength=balance.n_bins)
            sq[:, k] += np.bincount(b, weights=ch.W[:, k] ** 2, minlength=balance.n_bins)
    return out, sq


def observable_index(model, balance: Balance) -> int:
    names = list(model.store.observable_names)
    if balance.observable not in names:
        raise InputError(
            f"balance: unknown observable {balance.observable!r}; the store has {', '.join(names)}",
            file=str(model.store.path),
            field="balance.observable",
        )
    return names.index(balance.observable)


def resolve_factors(
    balance: Balance, sigma: np.ndarray, benchmark_names: Sequence[str], default_ref: str
):
    """(factors, reference): the configured factors, or those giving bin b the share
    ``shares[b]`` (default: the same share for every bin) of the draws at the reference benchmark.

    Bins without positive cross section at the reference get factor 1 (nothing to draw there);
    the factors are scaled so that Σ_b c_b σ_b = σ at the reference (Z = 1 there)."""
    ref = balance.reference or default_ref
    if ref not in benchmark_names:
        raise ConfigError(
            f"unknown benchmark {ref!r}; known: {', '.join(benchmark_names)}",
            field="balance.reference",
        )
    if balance.factors is not None:
        return np.asarray(balance.factors, float), ref
    s = sigma[:, list(benchmark_names).index(ref)]
    pos = s > 0
    if not np.any(pos):
        raise InputError(
            f"balance: no bin of {balance.observable} has a positive cross section at {ref}",
            field="balance",
        )
    target = np.full(len(s), 1.0) if balance.shares is None else np.asarray(balance.shares)
    target = np.where(pos, target, 0.0)
    target = target / target.sum()
    f = np.ones_like(s)
    f[pos] = s[pos].sum() * target[pos] / s[pos]
    return f, ref


def balance_record(
    balance: Balance, sigma: np.ndarray, factors, reference: str, model, sum_w2=None
) -> dict:
    """The ``balance`` attribute of a training set: what :class:`~eftflow.ml.models.ProposalCorrection`
    needs (morphing components and the per-component, per-bin cross sections), the shares, and
    (with ``sum_w2``) each bin's effective number of events at the reference (Kish)."""
    rec = {
        "observable": balance.observable,
        "edges": list(balance.edges),
        "factors": [float(v) for v in factors],
        "reference": reference,
        "benchmark_names": list(model.benchmark_names),
        "sigma_bins_pb": sigma.tolist(),
    }
    k = list(model.benchmark_names).index(reference)
    s = sigma[:, k]
    tot = float(s.sum())
    if tot > 0:
        rec["share_unbalanced"] = (s / tot).tolist()
        q = np.asarray(factors) * s
        rec["share_balanced"] = (q / q.sum()).tolist() if q.sum() > 0 else None
    if sum_w2 is not None:
        w2 = sum_w2[:, k]
        rec["events_bins"] = np.where(w2 > 0, s * s / np.where(w2 > 0, w2, 1.0), 0.0).tolist()
    if model.morpher is not None:
        rec["components"] = np.asarray(model.morpher.components, int).tolist()
        # σ_b(θ) = C(θ) @ matrix @ σ_{b,·}: per morphing component c and bin b
        rec["sigma_components"] = (np.asarray(model.morpher.matrix) @ sigma.T).tolist()
    return rec


def log_z(record: Mapping, theta: np.ndarray) -> np.ndarray:
    """log Z(θ) = log Σ_b c_b σ_b(θ) − log Σ_b σ_b(θ) for rows of θ (numpy; for checks and tests)."""
    from eftflow.physics.morphing import component_values

    theta = np.atleast_2d(np.asarray(theta, float))
    comps = np.asarray(record["components"], int)
    sc = np.asarray(record["sigma_components"], float)
    c = np.asarray(component_values(theta, comps))
    c = c.reshape(theta.shape[0], -1)
    sb = c @ sc
    f = np.asarray(record["factors"], float)
    return np.log(sb @ f) - np.log(sb.sum(axis=1))


def grad_log_z(record: Mapping, theta) -> np.ndarray:
    """∇θ log Z(θ) for rows of θ: (n, n_p). A score estimator trained on a balanced local set
    learns t(x) − ∇ log Z(θ); adding this gives t(x) back."""
    from eftflow.physics.morphing import component_gradients, component_values

    theta = np.atleast_2d(np.asarray(theta, float))
    comps = np.asarray(record["components"], int)
    sc = np.asarray(record["sigma_components"], float)
    f = np.asarray(record["factors"], float)
    sb = np.asarray(component_values(theta, comps)).reshape(theta.shape[0], -1) @ sc  # (n, bins)
    dsb = np.asarray(component_gradients(theta, comps)) @ sc  # (n, n_p, bins)
    return (dsb @ f) / (sb @ f)[:, None] - dsb.sum(-1) / sb.sum(-1)[:, None]


#: draws per effective event of a bin above which drawing a balanced set warns
REPEAT_WARNING = 50.0


def expected_repeats(record: dict, n_samples: int, *, where: str = "") -> list | None:
    """Expected draws per effective event in each bin for ``n_samples`` draws at the shares of
    ``record`` (logged; a warning when balancing raised a bin's share and it is drawn more than
    :data:`REPEAT_WARNING` times per event: a network then learns those events' joint ratios or
    scores, see :mod:`eftflow.sampling.balance`). Bins whose share balancing lowered repeat
    their events less than an unbalanced set would: no warning for them."""
    ess, share = record.get("events_bins"), record.get("share_balanced")
    if ess is None or share is None:
        return None
    before = record.get("share_unbalanced") or [0.0] * len(share)
    rep = [n_samples * sh / e if e > 0 else 0.0 for sh, e in zip(share, ess)]
    text = ", ".join(f"{r:.3g}" for r in rep)
    log.info("%sbalanced draws per effective event in each bin: %s", where, text)
    raised = [r for r, sh, b in zip(rep, share, before) if sh > b and r > REPEAT_WARNING]
    if raised:
        log.warning(
            "%sa bin whose share balancing raised is drawn %.3g times per effective event "
            "(bins: %s): networks trained on it learn those events' joint ratios (per-event "
            "noise, overstated information); lower its share",
            where, max(raised), text,
        )  # fmt: skip
    return rep
