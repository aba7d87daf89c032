"""Ensembles: N members trained in parallel on Dask workers, combined predictions with covariance.

MadMiner trains ensemble members one after another; here each member is one Dask task (a plain
function: train one estimator, write its artifact), so N members run on as many workers as the
cluster has — local processes, or SLURM workers through :mod:`eftflow.cluster`. Each member gets
its own seed (:func:`eftflow.generate.seeds.job_seed`) and limits torch to the worker's threads.

Combination (MadMiner's ``Ensemble``): predictions are averaged with weights
(``vote="uniform"``, or ``"expectation"``: members whose mean score on a sample drawn at the
reference point is far from its expected value 0 get less weight, w_k ∝ 1/(‖E[t̂_k]‖² + ε));
the member spread gives a covariance. Fisher information modes:

* ``"score"``: I from the ensemble-mean score, I = L Σ_i w_i t̄_i t̄_iᵀ; covariance from the
  members' own informations' spread (divided by N for the mean).
* ``"information"``: mean over members of each member's I; covariance = sample covariance / N.
* ``"modified_score"``: I from the mean score less its bias from the members' spread,
  L Σ_i w_i [t̄_i t̄_iᵀ − Cov_k(t_i)/K] with Cov_k the members' (unbiased) sample covariance:
  E[t̄ t̄ᵀ] = t tᵀ + Cov/K, so this is unbiased for member noise around the true score, where
  ``"score"`` is biased up by L Σ w Cov/K and ``"information"`` by L Σ w Cov.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.ml.artifacts import load_model
from eftflow.ml.evaluate import fisher_information_from_scores, predict_log_r, predict_score
from eftflow.ml.train import TrainingConfig, train_estimator

__all__ = ["member_seed", "train_member", "train_ensemble", "log_member", "Ensemble"]

log = logging.getLogger(__name__)


def member_seed(seed: int, member: int) -> int:
    from eftflow.generate.seeds import job_seed

    return job_seed(seed, "ensemble", member, stage="train")


def train_member(
    training_set: str, cfg: TrainingConfig, member: int, output_dir: str, threads: int = 1
) -> dict:
    """Train member ``member`` into ``output_dir/member_<k>`` (a plain function for Dask).

    The member's seed is derived from ``cfg.seed`` and ``member``; torch uses ``threads``
    intra-op threads while it trains. Returns the training summary with its ``history``,
    ``member`` and ``path`` (``member_<k>``, relative to ``output_dir``).
    """
    cfg = replace(cfg, seed=member_seed(cfg.seed, member), threads=max(int(threads), 1))
    out = Path(output_dir) / f"member_{member}"
    result = train_estimator(training_set, cfg, out, extra_spec={"ensemble_member": member})
    return {k: v for k, v in result.items() if k not in ("model", "spec")} | {
        "member": member,
        "path": out.name,
    }


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.5g}"


def log_member(
    result: dict, history: dict | None = None, *, per_epoch: bool = True, logger=None
) -> None:
    """Log a finished member: its per-epoch losses (from ``history``) and one summary line.

    ``result`` is a member summary (``member``, ``epochs_run``, ``best_epoch``, ``seconds``);
    ``history`` the training history (``train``, ``validation``, ``lr`` per epoch), whose lines
    are logged when ``per_epoch``.
    """
    logger = logger or log
    k = result.get("member")
    hist = history or {}
    train, val = list(hist.get("train") or []), list(hist.get("validation") or [])
    lrs = list(hist.get("lr") or [])
    for e, tr in enumerate(train if per_epoch else []):
        logger.info(
            "member %s epoch %d/%d: train loss %s, validation loss %s%s",
            k, e + 1, len(train), _fmt(tr), _fmt(val[e] if e < len(val) else None),
            f", lr {lrs[e]:.3g}" if e < len(lrs) else "",
        )  # fmt: skip
    best = int(result.get("best_epoch") or 0)
    best_train = train[best - 1] if 0 < best <= len(train) else None
    best_val = val[best - 1] if 0 < best <= len(val) else None
    logger.info(
        "member %s finished: %s epochs run, best epoch %d (train loss %s, validation loss %s), "
        "%.1f s",
        k, result.get("epochs_run"), best, _fmt(best_train), _fmt(best_val),
        float(result.get("seconds") or 0.0),
    )  # fmt: skip


def train_ensemble(
    training_set,
    cfg: TrainingConfig,
    n_members: int,
    output_dir,
    *,
    client=None,
    threads_per_member: int = 1,
) -> list[dict]:
    """Train ``n_members`` members, in parallel on ``client``'s workers when given.

    Writes ``output_dir/member_<k>.{pt,json}`` and ``output_dir/ensemble.json`` (member paths
    in it are relative to ``output_dir``). Each member's losses are logged here as it finishes
    (:func:`log_member`), so they reach this process's log even when members train on Dask
    workers.
    """
    if n_members < 1:
        raise InputError("an ensemble needs at least one member", field="n_members")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = []
    if client is None:
        for k in range(n_members):
            res = train_member(str(training_set), cfg, k, str(output_dir), threads_per_member)
            log_member(res, res.pop("history", None))
            results.append(res)
    else:
        from distributed import as_completed

        futures = [
            client.submit(
                train_member,
                str(training_set),
                cfg,
                k,
                str(output_dir),
                threads_per_member,
                key=f"train-member-{k}-{cfg.method}",
                pure=False,
            )
            for k in range(n_members)
        ]
        for fut in as_completed(futures):
            res = fut.result()
            log_member(res, res.pop("history", None))
            results.append(res)
        results.sort(key=lambda r: r["member"])
    summary = {
        "format": "eftflow-ensemble",
        "method": cfg.method,
        "n_members": n_members,
        "members": [f"member_{r['member']}" for r in results],
        "results": results,
    }
    from eftflow.store.atomic import atomic_path

    with atomic_path(output_dir / "ensemble.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=float))
    return results


class Ensemble:
    """Trained members loaded from a directory written by :func:`train_ensemble`."""

    def __init__(self, members: list, specs: list[dict], *, source=None):
        if not members:
            raise InputError("empty ensemble", file=source)
        methods = {s["method"] for s in specs}
        if len(methods) != 1:
            raise InputError(f"ensemble mixes methods {sorted(methods)}", file=source)
        inputs = {(_n_observables(s), tuple(_observable_names(s) or ())) for s in specs}
        if len(inputs) != 1:
            raise InputError(
                "ensemble members were trained on different observables: "
                + "; ".join(
                    f"{n} ({', '.join(names) or 'unnamed'})" for n, names in sorted(inputs)
                ),
                file=source,
                field="training_set_attrs.observable_names",
            )
        self.members, self.specs = members, specs
        self.source = None if source is None else str(source)
        self.method = specs[0]["method"]
        self.weights = np.full(len(members), 1.0 / len(members))

    @classmethod
    def load(cls, path, *, family: str | None = None) -> Ensemble:
        """Load an ensemble directory (with ``ensemble.json``) or one model (``.pt``/``.json``)."""
        path = Path(path)
        if not path.is_dir():
            model, spec = load_model(path, family=family)
            return cls([model], [spec], source=path)
        index = path / "ensemble.json"
        if not index.exists():
            raise InputError("not an ensemble directory (no ensemble.json)", file=str(path))
        try:
            names = json.loads(index.read_text())["members"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError("malformed ensemble index", file=str(index), field="members") from None
        loaded = [load_model(path / n, family=family) for n in names]
        return cls([m for m, _ in loaded], [s for _, s in loaded], source=path)

    @property
    def family(self) -> str:
        return self.specs[0]["family"]

    @property
    def seeds(self) -> list[int]:
        """The members' training seeds."""
        return [int(s["training"]["seed"]) for s in self.specs]

    def __len__(self) -> int:
        return len(self.members)

    @property
    def n_observables(self) -> int:
        """Number of observables (columns of x) the members take."""
        return _n_observables(self.specs[0])

    @property
    def observable_names(self) -> list[str] | None:
        """Observables of the training set (``training_set_attrs.observable_names``), if recorded."""
        return _observable_names(self.specs[0])

    def check_observables(self, names, *, file=None, field: str = "attrs.observable_names") -> None:
        """Refuse events whose observables differ from the ones the members were trained on.

        ``names`` are the observables (in column order) of the events to be evaluated, from
        ``file``. Names are compared when the training set recorded them, else only the count.

        Raises
        ------
        InputError
            Naming ``file`` and ``field``, with the model's and the events' observables.
        """
        names = [str(n) for n in names]
        mine = self.observable_names
        if mine is None:
            if len(names) == self.n_observables:
                return
            mine_text = f"{self.n_observables} unnamed observables"
        elif mine == names:
            return
        else:
            mine_text = f"{len(mine)} observables ({', '.join(mine)})"
        raise InputError(
            f"the model{' ' + self.source if self.source else ''} was trained on {mine_text}; "
            f"these events have "
            f"{len(names)} observables ({', '.join(names)})",
            file=file,
            field=field,
        )

    def vote_expectation_weights(
        self, x_reference, *, theta0=None, eps: float = 1e-3
    ) -> np.ndarray:
        """Weights from expectations that vanish for a perfect estimator.

        Score models: E_ref[t̂_k] = 0, w_k ∝ 1/(‖E[t̂_k]‖² + ε) with ``x_reference`` drawn at the
        reference point. Ratio models: E_θ1[r̂_k(x|θ0, θ1)] = 1 for x ~ θ1 (the reference),
        w_k ∝ 1/(Σ_θ0 (E[r̂_k] − 1)² + ε) over the points ``theta0``.
        """
        if self.family == "score":
            means = np.array([predict_score(m, x_reference).mean(axis=0) for m in self.members])
            dev = np.sum(means * means, axis=1)
        elif self.family == "ratio":
            if theta0 is None:
                raise InputError("ratio ensembles need theta0 points to vote", field="theta0")
            dev = np.array(
                [
                    np.sum((np.exp(predict_log_r(m, x_reference, theta0)).mean(axis=1) - 1) ** 2)
                    for m in self.members
                ]
            )
        else:
            raise InputError("expectation votes need score or ratio members", field="vote")
        w = 1.0 / (dev + eps)
        self.weights = w / w.sum()
        return self.weights

    def predict_score(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean score (n, n_p) and the member covariance of that mean (n, n_p, n_p)."""
        t = np.stack([predict_score(m, x) for m in self.members])  # (K, n, p)
        return self._combine(t)

    def predict_log_r(self, x, theta0, theta1=None) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean log r̂ (n_theta, n) and its member variance of the mean."""
        lr = np.stack([predict_log_r(m, x, theta0, theta1) for m in self.members])  # (K, T, n)
        mean = np.tensordot(self.weights, lr, axes=1)
        var = np.tensordot(self.weights, (lr - mean) ** 2, axes=1) / max(len(self) - 1, 1)
        return mean, var

    def _combine(self, t):
        w = self.weights
        mean = np.tensordot(w, t, axes=1)
        d = t - mean
        k = len(self)
        cov = np.einsum("k,kni,knj->nij", w, d, d) * (k / max(k - 1, 1)) / k
        return mean, cov

    def fisher_parts(self, x, weights, luminosity: float) -> dict:
        """Sums over the events ``x`` (weights in pb at the reference θ) that are additive over
        chunks: feed chunk after chunk to :meth:`combine_fisher` with ``parts=[...]``."""
        w = np.asarray(weights, float)
        t = np.stack([predict_score(m, x) for m in self.members])  # (K, n, p)
        mean_t, cov_t = self._combine(t)
        per = luminosity * w[:, None, None] * mean_t[:, :, None] * mean_t[:, None, :]
        flat = per.reshape(len(w), -1)
        return {
            "per_member": np.stack([fisher_information_from_scores(tk, w, luminosity) for tk in t]),
            "mean_score": per.sum(axis=0),
            "stat_cov": flat.T @ flat,
            "spread": luminosity * np.einsum("i,ijk->jk", w, cov_t),
            "n_events": len(w),
        }

    def combine_fisher(self, parts: list[dict], *, mode: str = "score") -> tuple:
        """Information (p, p) and covariance (p², p²) from summed :meth:`fisher_parts`.

        The covariance adds the members' spread (the estimator's uncertainty, divided by K for
        the mean) and the Monte-Carlo uncertainty of the finite event sample, Σ_i (L w_i t̄t̄ᵀ)⊗(…)
        (MadMiner reports only the first, which understates the error).
        """
        if mode not in ("score", "information", "modified_score"):
            raise InputError(
                f"unknown mode {mode!r}; use score, information or modified_score",
                field="ensemble.mode",
            )
        tot = {k: sum(p[k] for p in parts) for k in parts[0]}
        per_member = tot["per_member"]
        k, p = per_member.shape[0], per_member.shape[1]
        flat = per_member.reshape(k, p * p)
        spread = (
            np.cov(flat, rowvar=False, aweights=self.weights).reshape(p * p, p * p) / k
            if k > 1
            else np.zeros((p * p,) * 2)
        )
        info_mean = np.tensordot(self.weights, per_member, axes=1)
        if mode == "information":
            info = info_mean
        elif mode == "score":
            info = tot["mean_score"]
        else:  # the mean score's information less the member spread of the mean
            info = tot["mean_score"] - tot["spread"]
        return info, spread + tot["stat_cov"]

    def fisher_information(
        self, x, weights, luminosity: float, *, mode: str = "score", sigma_gradient=None, sigma=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detector-level Fisher information (n_p, n_p) and its covariance (n_p², n_p²).

        ``x`` and ``weights`` (pb per event at the reference θ) describe the events; add the rate
        term by passing σ and ∇σ at the reference θ. Modes: see the module docstring.
        """
        info, cov = self.combine_fisher([self.fisher_parts(x, weights, luminosity)], mode=mode)
        if sigma is not None and sigma_gradient is not None:
            g = np.asarray(sigma_gradient, float)
            info = info + luminosity * np.outer(g, g) / sigma
        return info, cov


def _n_observables(spec: dict) -> int:
    return int(spec["model"]["kwargs"]["n_observables"])


def _observable_names(spec: dict) -> list[str] | None:
    names = (spec.get("training_set_attrs") or {}).get("observable_names")
    return [str(n) for n in names] if isinstance(names, list) else None
