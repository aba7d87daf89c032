"""Sample augmentation ("gold mining"): MadMiner's ``SampleAugmenter`` on chunked stores.

Each method draws unweighted events (with replacement, probability ∝ w(x|θ)) from one partition of
a combined event store and writes a training set (:mod:`eftflow.sampling.output`) with MadMiner's
array names:

=========================  ==================================  ===========================================
method                     arrays                              for
=========================  ==================================  ===========================================
``sample_train_plain``     x, theta                            histograms, ABC, plain NDE
``sample_train_local``     x, theta, t_xz (score at θ)         SALLY, SALLINO
``sample_train_density``   x, theta, t_xz (θ from a prior)     NDE, SCANDAL
``sample_train_ratio``     x, theta0, theta1, y, r_xz,         CARL, ROLR, RASCAL, ALICE, ALICES, CASCAL
                           t_xz0, t_xz1
``sample_train_more_ratios`` as ratio, plus rows at            doubly parameterised estimators
                           ``additional_thetas``
``sample_test``            x, theta (test partition)           evaluation
=========================  ==================================  ===========================================

Conventions (as MadMiner): y = 0 for events drawn from θ0, y = 1 for events from θ1; half of
``n_samples`` each. r_xz = p(x,z|θ0)/p(x,z|θ1); t_xz0 / t_xz1 = joint score at θ0 / θ1. With
several θ (benchmarks, points, random) the samples are spread evenly: round(n/n_θ) per point,
and lists of different lengths are cycled (MadMiner's ``_build_sets``). When any ν is not nominal,
ν is appended to the θ arrays; ``nuisance_score=True`` appends ∂/∂ν to the scores.
``sample_only_from_closest_benchmark=True`` (MadMiner's default) uses only the events generated at
the benchmark nearest to the sampling θ (plus background) — the remedy for morphing weights that
span orders of magnitude far from where the events were generated.

Reproducibility: the same store, setup, arguments and ``seed`` give identical outputs, whatever
the number of workers (random θ, the allocation and each chunk's draws have their own seeded
streams). The summary (ESS per θ, distinct events, seeds) is returned and stored in the output's
``summary`` attribute.

Example
-------
With a combined event store and its setup file::

    from eftflow.sampling import SampleAugmenter, benchmark, random_morphing_points
    sa = SampleAugmenter("combined.zarr", "setup.h5", n_workers=4)
    sa.sample_train_local(benchmark("sm"), 100_000, "train_local.zarr", seed=1)
    sa.sample_train_ratio(random_morphing_points(100, [("flat", -1, 1)] * 2), benchmark("sm"),
                          200_000, "train_ratio.zarr", seed=2)
"""

from __future__ import annotations

import logging

import numpy as np

from eftflow.errors import ConfigError
from eftflow.sampling.specs import (
    NuSpec,
    ThetaSpec,
    nu_spec_from_config,
    resolve_nus,
    resolve_thetas,
    spec_from_config,
)
from eftflow.sampling.unweight import Plan, Request, run_plan
from eftflow.sampling.weights import WeightModel

__all__ = ["SampleAugmenter"]

log = logging.getLogger(__name__)


class SampleAugmenter:
    """Draw training and test samples from an event store (MadMiner's ``SampleAugmenter``).

    Parameters
    ----------
    store
        Combined event store (path or :class:`~eftflow.store.events.EventStore`).
    setup
        :class:`~eftflow.setup.EFTSetup` or setup-file path.
    include_nuisance_parameters
        Use the setup's nuisance parameters (needs nuisance weights in the store).
    n_workers, scheduler
        Dask threads or a distributed client (:func:`eftflow.sampling.parallel.map_chunks`).
    dtype
        Output dtype (``float32`` as MadMiner's default, or ``float64``).
    min_effective_samples
        A sampling point with a smaller effective sample size in the partition is an error.
    memory_mb
        Memory (MB) for keeping chunks between the two passes and for shuffling the output in
        memory (:func:`eftflow.sampling.unweight.run_plan`); beyond it, chunks are read twice
        and rows go through part files. 0 always streams.
    """

    def __init__(
        self,
        store,
        setup,
        *,
        include_nuisance_parameters: bool = True,
        n_workers: int = 1,
        scheduler=None,
        dtype: str = "float32",
        chunk_rows: int = 100_000,
        min_effective_samples: float = 10.0,
        setup_file=None,
        memory_mb: float = 256.0,
    ):
        from eftflow.setup import EFTSetup

        if not hasattr(setup, "parameter_names"):
            setup_file = setup if setup_file is None else setup_file
            setup = EFTSetup.from_file(setup)
        if dtype not in ("float32", "float64"):
            raise ConfigError(
                f"dtype must be float32 or float64, got {dtype!r}", field="augmentation.dtype"
            )
        self.store = store
        self.setup = setup
        self.setup_file = setup_file
        self.include_nuisance = include_nuisance_parameters
        self.n_workers = n_workers
        self.scheduler = scheduler
        self.dtype = dtype
        self.chunk_rows = int(chunk_rows)
        self.min_effective_samples = float(min_effective_samples)
        self.memory_mb = float(memory_mb)
        self._models: dict[str, WeightModel] = {}

    def model(self, partition: str, balance=None) -> WeightModel:
        """The :class:`WeightModel` of one partition (cached), balanced with ``balance``
        (:mod:`eftflow.sampling.balance`) if given."""
        from eftflow.sampling.balance import balance_from_config

        balance = balance_from_config(balance)
        key = (partition, balance)
        if key not in self._models:
            self._models[key] = WeightModel(
                self.store,
                self.setup,
                partition=partition,
                include_nuisance=self.include_nuisance,
                setup_file=self.setup_file,
                balance=balance,
            )
        return self._models[key]

    # --- plan building -----------------------------------------------------------------------
    def _plan(
        self, model, roles, n_total, groups, *, closest, seed, score, nuisance_score, mode, stream=0
    ):
        """``roles``: [(ThetaSpec, NuSpec)]; ``groups``: [(sampling role, templates)]."""
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3, int(stream)]))
        thetas_r, nus_r = [], []
        for j, (tspec, nspec) in enumerate(roles):
            t_field, n_field = (f"theta{j}", f"nu{j}") if len(roles) > 1 else ("theta", "nu")
            tspec = spec_from_config(tspec, field=t_field)
            t = resolve_thetas(tspec, self.setup, rng, field=t_field)
            nspec = nu_spec_from_config(nspec, field=n_field)
            thetas_r.append(t)
            nus_r.append(resolve_nus(nspec, t.shape[0], model.n_nuisance, rng, field=n_field))
        if nuisance_score and model.n_nuisance == 0:
            raise ConfigError(
                "nuisance_score needs nuisance parameters in setup and store",
                field="nuisance_score",
            )
        n_sets = max(t.shape[0] for t in thetas_r)
        n_per = min(max(int(round(n_total / t.shape[0])), 1) for t in thetas_r)
        table: dict = {}
        th, nu, sub = [], [], []

        def point(theta, nuv, subset):
            key = (tuple(np.round(theta, 15)), tuple(np.round(nuv, 15)), subset)
            if key not in table:
                table[key] = len(th)
                th.append(theta)
                nu.append(nuv)
                sub.append(subset)
            return table[key]

        requests = []
        for role, templates in groups:
            for i in range(n_sets):
                vals = [
                    (thetas_r[r][i % thetas_r[r].shape[0]], nus_r[r][i % nus_r[r].shape[0]])
                    for r in range(len(roles))
                ]
                subset = model.closest_benchmark(vals[role][0]) if closest else None
                pts = tuple(point(t, v, subset) for t, v in vals)
                requests.append(Request(pts, role, n_per, tuple(templates)))
        thetas = np.array(th).reshape(len(th), -1)
        nus = np.array(nu).reshape(len(th), model.n_nuisance)
        theta_out = np.hstack([thetas, nus]) if np.any(nus != 0) else thetas
        return Plan(thetas, nus, sub, requests, mode, score, theta_out, nuisance_score)

    def _run(self, method, plan, model, output, seed, extra_attrs=None):
        return run_plan(
            model,
            plan,
            output,
            seed=seed,
            method=method,
            n_workers=self.n_workers,
            scheduler=self.scheduler,
            dtype=self.dtype,
            chunk_rows=self.chunk_rows,
            min_effective_samples=self.min_effective_samples,
            memory_mb=self.memory_mb,
            extra_attrs=extra_attrs,
        )

    def _single(
        self, method, theta, n_samples, output, nu, partition, closest, seed, score, nuisance_score,
        balance=None, validation_events=None,
    ):  # fmt: skip
        _check_n(n_samples, method)
        model = self.model(partition, balance)
        plan = self._plan(
            model, [(theta, nu)], n_samples, [(0, [(0, -1, 0)])],
            closest=closest, seed=seed, score=score, nuisance_score=nuisance_score, mode="single",
        )  # fmt: skip
        plan.held_fraction = _held_fraction(validation_events)
        extra_attrs = None
        if model.balance_record is not None:
            extra_attrs = {"balance": _balance_attrs(model, plan, role=0)}
        return self._run(method, plan, model, output, seed, extra_attrs)

    # --- MadMiner's methods ------------------------------------------------------------------
    def sample_train_plain(
        self,
        theta: ThetaSpec | dict | str,
        n_samples: int,
        output,
        *,
        nu: NuSpec | dict | None = None,
        partition: str = "train",
        sample_only_from_closest_benchmark: bool = True,
        seed: int = 0,
        validation_events: float | None = None,
    ) -> dict:
        """x ~ p(x|θ) with θ saved alongside (no augmented data)."""
        return self._single(
            "plain", theta, n_samples, output, nu, partition, sample_only_from_closest_benchmark,
            seed, False, False, validation_events=validation_events,
        )  # fmt: skip

    def sample_train_local(
        self,
        theta: ThetaSpec | dict | str,
        n_samples: int,
        output,
        *,
        nu: NuSpec | dict | None = None,
        nuisance_score: bool = False,
        partition: str = "train",
        sample_only_from_closest_benchmark: bool = True,
        seed: int = 0,
        balance=None,
        validation_events: float | None = None,
    ) -> dict:
        """x ~ p(x|θ) and the joint score t_xz at that θ (SALLY, SALLINO).

        ``balance`` as for :meth:`sample_train_ratio`: the score learned from the set is then
        t(x) − ∇ log Z(θ), and the score estimators trained on it add ∇ log Z(θ) back.
        """
        _no_nuisance_score(balance, nuisance_score)
        return self._single(
            "local", theta, n_samples, output, nu, partition, sample_only_from_closest_benchmark, seed, True,
            nuisance_score, balance, validation_events,
        )  # fmt: skip

    def sample_train_density(
        self,
        theta: ThetaSpec | dict | str,
        n_samples: int,
        output,
        *,
        nu: NuSpec | dict | None = None,
        nuisance_score: bool = False,
        partition: str = "train",
        sample_only_from_closest_benchmark: bool = True,
        seed: int = 0,
        balance=None,
        validation_events: float | None = None,
    ) -> dict:
        """x ~ p(x|θ) for θ from a prior, with the joint score at θ (NDE, SCANDAL).

        ``balance`` as for :meth:`sample_train_ratio`: a density estimator trained on the set
        learns c(x) p(x|θ)/Z(θ) and adds log Z(θ) − log c(x) back.
        """
        _no_nuisance_score(balance, nuisance_score)
        return self._single(
            "density", theta, n_samples, output, nu, partition, sample_only_from_closest_benchmark, seed, True,
            nuisance_score, balance, validation_events,
        )  # fmt: skip

    def sample_test(
        self,
        theta: ThetaSpec | dict | str,
        n_samples: int,
        output,
        *,
        nu: NuSpec | dict | None = None,
        partition: str = "test",
        sample_only_from_closest_benchmark: bool = True,
        seed: int = 0,
    ) -> dict:
        """Evaluation sample x ~ p(x|θ) from the test partition."""
        return self._single(
            "test",
            theta,
            n_samples,
            output,
            nu,
            partition,
            sample_only_from_closest_benchmark,
            seed,
            False,
            False,
        )

    def sample_train_ratio(
        self,
        theta0: ThetaSpec | dict | str,
        theta1: ThetaSpec | dict | str,
        n_samples: int,
        output,
        *,
        nu0: NuSpec | dict | None = None,
        nu1: NuSpec | dict | None = None,
        nuisance_score: bool = False,
        partition: str = "train",
        sample_only_from_closest_benchmark: bool = True,
        seed: int = 0,
        balance=None,
        validation_events: float | None = None,
    ) -> dict:
        """Half the events from θ0 (y=0), half from θ1 (y=1), with r_xz(θ0, θ1), t_xz0, t_xz1.

        ``balance`` (``{observable, edges[, shares | factors, reference]}``): draw ∝ w·c(x), c
        constant in bins of one observable, giving each bin its share of the draws at the
        reference (default: equal shares; :mod:`eftflow.sampling.balance`); estimators trained
        on the set correct for it.
        """
        return self.sample_train_more_ratios(
            theta0,
            theta1,
            n_samples,
            output,
            nu0=nu0,
            nu1=nu1,
            additional_thetas=None,
            nuisance_score=nuisance_score,
            partition=partition,
            sample_only_from_closest_benchmark=sample_only_from_closest_benchmark,
            seed=seed,
            balance=balance,
            validation_events=validation_events,
            _method="ratio",
        )

    def sample_train_more_ratios(
        self,
        theta0: ThetaSpec | dict | str,
        theta1: ThetaSpec | dict | str,
        n_samples: int,
        output,
        *,
        nu0: NuSpec | dict | None = None,
        nu1: NuSpec | dict | None = None,
        additional_thetas: list | None = None,
        nuisance_score: bool = False,
        partition: str = "train",
        sample_only_from_closest_benchmark: bool = True,
        seed: int = 0,
        balance=None,
        validation_events: float | None = None,
        _method: str = "more_ratios",
    ) -> dict:
        """As :meth:`sample_train_ratio`, plus for each additional θ_k extra rows per drawn event:
        events from θ0 get (θ0, θ_k) with r(θ0, θ_k), t_xz1 = t(θ_k); events from θ1 get
        (θ_k, θ1) with r(θ_k, θ1), t_xz0 = t(θ_k) (MadMiner's doubly parameterised set-up).
        """
        _check_n(n_samples, _method)
        model = self.model(partition, balance)
        extra = list(additional_thetas or [])
        score = model.morpher is not None
        roles = [(theta0, nu0), (theta1, nu1)] + [(t, nu1) for t in extra]
        k = len(extra)
        groups0 = [(0, [(0, 1, 0)] + [(0, 2 + i, 0) for i in range(k)])]
        plan0 = self._plan(
            model, roles, n_samples // 2, groups0, closest=sample_only_from_closest_benchmark, seed=seed,
            score=score, nuisance_score=nuisance_score, mode="pair",
        )  # fmt: skip
        roles1 = [(theta0, nu0), (theta1, nu1)] + [(t, nu0) for t in extra]
        groups1 = [(1, [(0, 1, 1)] + [(2 + i, 1, 1) for i in range(k)])]
        plan1 = self._plan(
            model, roles1, n_samples // 2, groups1, closest=sample_only_from_closest_benchmark, seed=seed,
            score=score, nuisance_score=nuisance_score, mode="pair", stream=1,
        )  # fmt: skip
        plan = _merge_plans(plan0, plan1)
        plan.held_fraction = _held_fraction(validation_events)
        extra_attrs = None
        if model.balance_record is not None:
            extra_attrs = {"balance": _balance_attrs(model, plan)}
        return self._run(_method, plan, model, output, seed, extra_attrs)

    def cross_sections(self, theta, nu=None, *, partition: str = "all", seed: int = 0) -> dict:
        """σ(θ, ν) with errors for a θ spec (MadMiner's ``cross_sections``)."""
        from eftflow.sampling.xsec import cross_sections

        model = self.model(partition)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3]))
        thetas = resolve_thetas(spec_from_config(theta), self.setup, rng, warn_outside_range=False)
        nus = resolve_nus(nu_spec_from_config(nu), thetas.shape[0], model.n_nuisance, rng)
        return cross_sections(
            model, None, thetas, nus, n_workers=self.n_workers, scheduler=self.scheduler
        )


def _balance_attrs(model: WeightModel, plan: Plan, role: int = 1) -> dict:
    """The training set's ``balance`` attribute, with ``theta1`` (ratio sets: the θ of role 1)
    or ``theta`` (local sets: role 0) when it is one point; balancing needs nominal ν and
    morphing."""
    if np.any(plan.nus != 0):
        raise ConfigError(
            "balance needs nominal nuisance parameters (Z(θ, ν) would depend on each event's "
            "nuisance weights)",
            field="balance",
        )
    if model.morpher is None:
        raise ConfigError(
            "balance needs a morphing setup (the correction Z(θ) is evaluated by morphing)",
            field="balance",
        )
    from eftflow.sampling.balance import expected_repeats

    rec = dict(model.balance_record)
    rec["expected_repeats"] = expected_repeats(rec, sum(r.n for r in plan.requests))
    points = {tuple(plan.thetas[r.points[role]]) for r in plan.requests}
    rec["theta1" if role == 1 else "theta"] = list(next(iter(points))) if len(points) == 1 else None
    return rec


def _no_nuisance_score(balance, nuisance_score) -> None:
    from eftflow.sampling.balance import balance_from_config

    if nuisance_score and balance_from_config(balance) is not None:
        raise ConfigError(
            "balance and nuisance_score do not go together (∂/∂ν log Z would depend on each "
            "event's nuisance weights)",
            field="balance",
        )


def _held_fraction(value) -> float:
    """``validation_events`` as a fraction in [0, 1) (None: 0, no events held out)."""
    if value is None:
        return 0.0
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = -1.0
    if not 0.0 <= f < 1.0:
        raise ConfigError(
            f"validation_events must be a fraction in [0, 1), got {value!r}",
            field="validation_events",
        )
    return f


def _check_n(n_samples, method: str) -> None:
    if not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ConfigError(
            f"n_samples must be a positive integer, got {n_samples!r}",
            field=f"augmentation.{method}.n_samples",
        )


def _merge_plans(a: Plan, b: Plan) -> Plan:
    """Concatenate two plans' point tables (re-indexing b's requests)."""
    off = a.thetas.shape[0]
    reqs = list(a.requests) + [
        Request(tuple(p + off for p in r.points), r.sampling_role, r.n, r.templates)
        for r in b.requests
    ]
    width = max(a.theta_out.shape[1], b.theta_out.shape[1])
    nus = np.vstack([a.nus, b.nus])
    thetas = np.vstack([a.thetas, b.thetas])
    theta_out = np.hstack([thetas, nus]) if width > thetas.shape[1] or np.any(nus != 0) else thetas
    return Plan(
        thetas, nus, a.subsets + b.subsets, reqs, a.mode, a.score, theta_out, a.score_nuisance
    )
