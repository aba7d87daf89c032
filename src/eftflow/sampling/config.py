"""The ``augmentation`` config section: schema fragment, defaults, and the stage driver.

:data:`SCHEMA_FRAGMENT` is the JSON-schema (YAML) of the section, with a description and a
default for every key; it belongs under ``properties:`` of ``workflow/schemas/config.schema.yaml``.
Until it is merged there, :func:`stage_sections` validates the section on its own.
:func:`run_augmentation` is what ``eftflow augment-samples`` runs.
"""

from __future__ import annotations

import json
import logging

import yaml

from eftflow.errors import ConfigError

__all__ = ["SCHEMA_FRAGMENT", "stage_sections", "run_augmentation", "METHODS"]

log = logging.getLogger(__name__)

METHODS = ("plain", "local", "density", "ratio", "more_ratios", "test")
#: the methods that take ``balance`` (:mod:`eftflow.sampling.balance`)
BALANCED = ("local", "density", "ratio", "more_ratios")

SCHEMA_FRAGMENT = """
augmentation:
  type: object
  additionalProperties: false
  default: {}
  description: Sample augmentation ("gold mining", MadMiner's SampleAugmenter); one training set per entry of `samples`.
  properties:
    sample_only_from_closest_benchmark:
      type: boolean
      default: true
      description: Draw only from events generated at the benchmark closest to the sampling θ (plus background).
    dtype:
      enum: [float32, float64]
      default: float32
      description: Floating-point type of the training arrays.
    chunk_rows:
      type: integer
      minimum: 1
      default: 100000
      description: Rows per zarr chunk of the training sets.
    min_effective_samples:
      type: number
      minimum: 0
      default: 10
      description: A sampling θ whose effective sample size in the partition is smaller is an error.
    samples:
      type: array
      default:
        - {name: train_local, method: local, theta: sm, n_samples: 100000}
        - {name: train_ratio, method: ratio, theta0: {type: random, n: 100, priors: [[flat, -0.001, 0.001], [flat, -0.001, 0.001]]}, theta1: sm, n_samples: 200000}
        - {name: test, method: test, theta: sm, n_samples: 10000}
      description: >
        Training/test sets to draw. θ specs: a benchmark name, {type: benchmark, name}, {type: benchmarks, names},
        {type: point, values}, {type: points, values}, {type: random, n, priors: [[flat|gaussian, a, b], ...]},
        {type: grid, axes: [[low, high, n], ...]}.
      items:
        type: object
        additionalProperties: false
        required: [name, method, n_samples]
        properties:
          name: {type: string, pattern: "^[A-Za-z0-9_.-]+$", description: Output name (<outdir>/<name>.zarr).}
          method: {enum: [plain, local, density, ratio, more_ratios, test], description: Which SampleAugmenter method.}
          n_samples: {type: integer, minimum: 1, description: Number of samples (for ratio methods half from θ0, half from θ1).}
          theta: {description: θ spec for plain/local/density/test., default: sm}
          theta0: {description: Numerator θ spec (ratio, more_ratios)., default: sm}
          theta1: {description: Denominator θ spec (ratio, more_ratios)., default: sm}
          additional_thetas: {type: array, default: [], description: Extra θ specs (more_ratios).}
          nu: {description: "ν spec: nominal, {type: iid, prior: [gaussian, 0, 1]} or {type: point, values}.", default: nominal}
          nu0: {description: ν spec at θ0 (ratio methods)., default: nominal}
          nu1: {description: ν spec at θ1 (ratio methods)., default: nominal}
          nuisance_score: {type: boolean, default: false, description: Also write ∂/∂ν of the joint log-likelihood.}
          partition: {enum: [train, validation, test, all, null], default: null, description: "Event partition (default: test for method test, else train)."}
          seed: {type: [integer, "null"], default: null, description: "Seed (default: derived from the global seed and the name)."}
          validation_events: {type: [number, "null"], minimum: 0, exclusiveMaximum: 1, default: null, description: "Fraction of the events held out for validation (training methods)."}
          balance:
            type: object
            default: {}
            additionalProperties: false
            description: "local, density and ratio methods only: draw ∝ w·c(x), c constant in bins of one observable (shares of the draws at the reference per bin, default equal); estimators correct for it. Off unless observable is set."
            properties:
              observable: {type: [string, "null"], default: null, description: Observable whose bins are balanced.}
              edges: {type: [array, "null"], items: {type: number}, default: null, description: Bin edges.}
              shares: {type: [array, "null"], items: {type: number, exclusiveMinimum: 0}, default: null, description: Share of the draws per bin at the reference.}
              factors: {type: [array, "null"], items: {type: number, exclusiveMinimum: 0}, default: null, description: c per bin instead of shares.}
              reference: {type: [string, "null"], default: null, description: Benchmark at which the shares hold.}
"""


def stage_sections(cfg: dict, fragment: str = SCHEMA_FRAGMENT, *, file: str | None = None) -> dict:
    """Validate (and fill the defaults of) the sections of ``cfg`` described by ``fragment``.

    Other sections are passed through unchanged (they are validated by their own stages).
    """
    from eftflow.config import validate_config

    frag = yaml.safe_load(fragment)
    sub = {k: cfg.get(k, {}) for k in frag}
    validate_config(sub, file=file, schema={"type": "object", "properties": frag})
    out = dict(cfg)
    out.update(sub)
    return out


def run_augmentation(
    store,
    setup_file,
    cfg: dict,
    outdir,
    *,
    n_workers: int = 1,
    scheduler=None,
    memory_mb: float = 256.0,
) -> dict:
    """Draw every configured training set into ``outdir`` (written atomically); returns the summary.

    ``memory_mb`` bounds the augmenter's event buffers (:class:`SampleAugmenter`): chunks kept
    between its two passes and outputs shuffled in memory."""
    from eftflow.generate.seeds import job_seed
    from eftflow.sampling.augment import SampleAugmenter
    from eftflow.store.atomic import atomic_path

    aug = cfg["augmentation"]
    global_seed = int(cfg.get("seed", 0))
    sa = SampleAugmenter(
        store,
        setup_file,
        n_workers=n_workers,
        scheduler=scheduler,
        dtype=aug["dtype"],
        chunk_rows=aug["chunk_rows"],
        min_effective_samples=aug["min_effective_samples"],
        memory_mb=memory_mb,
    )
    names = [s["name"] for s in aug["samples"]]
    if len(set(names)) != len(names):
        raise ConfigError("sample names must be unique", field="augmentation.samples")
    summary = {}
    with atomic_path(outdir) as tmp:
        tmp.mkdir(parents=True)
        for i, s in enumerate(aug["samples"]):
            where = f"augmentation.samples[{i}]"
            seed = (
                s["seed"]
                if s.get("seed") is not None
                else job_seed(global_seed, s["name"], 0, stage="augment")
            )
            part = s.get("partition") or ("test" if s["method"] == "test" else "train")
            common = {"partition": part, "seed": seed,
                      "sample_only_from_closest_benchmark": aug["sample_only_from_closest_benchmark"]}  # fmt: skip
            if s.get("validation_events") is not None:
                if s["method"] == "test":
                    raise ConfigError(
                        "validation_events is for training sets, not method test",
                        field=f"{where}.validation_events",
                    )
                common["validation_events"] = s["validation_events"]
            out = tmp / f"{s['name']}.zarr"
            if (s.get("balance") or {}).get("observable") and s["method"] not in BALANCED:
                raise ConfigError(
                    f"balance is for the methods {', '.join(BALANCED)}, not {s['method']}",
                    field=f"{where}.balance",
                )
            try:
                if s["method"] in ("plain", "test"):
                    fn = sa.sample_train_plain if s["method"] == "plain" else sa.sample_test
                    res = fn(s["theta"], s["n_samples"], out, nu=s["nu"], **common)
                elif s["method"] in ("local", "density"):
                    fn = (
                        sa.sample_train_local if s["method"] == "local" else sa.sample_train_density
                    )
                    kw = {"balance": s.get("balance")}
                    res = fn(
                        s["theta"],
                        s["n_samples"],
                        out,
                        nu=s["nu"],
                        nuisance_score=s["nuisance_score"],
                        **common,
                        **kw,
                    )
                else:
                    res = sa.sample_train_more_ratios(
                        s["theta0"], s["theta1"], s["n_samples"], out, nu0=s["nu0"], nu1=s["nu1"],
                        additional_thetas=s["additional_thetas"] or None, nuisance_score=s["nuisance_score"],
                        balance=s.get("balance"), _method=s["method"], **common,
                    )  # fmt: skip
            except ConfigError as err:
                raise ConfigError(
                    err.message, file=err.file, field=f"{where}.{err.field}" if err.field else where
                ) from None
            summary[s["name"]] = res
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    return summary
