"""``eftflow generate-events``: one generator job (rule ``generate_events``).

The ``generation`` config section::

    generation:
      backend: toy            # toy | builtin | madgraph
      n_events_per_job: 10000
      n_jobs: 1
      samples:                # one entry per sample; keys override the section's
        sm: {sampling_benchmark: sm}
      toy: {sigma0: 1.0, smearing: 0.5}       # options of each backend
      madgraph: {mg_dir: /opt/MG5_aMC_v3_5_7, process: ..., model: sm}

``--config`` takes that section as inline JSON (as the Snakemake rule passes it) or a full
config file (then its ``generation`` section and top-level ``seed`` are used).
"""

from __future__ import annotations

import argparse
import json
import logging

from eftflow.cli.common import (
    add_config_argument,
    load_stage_config,
    non_negative_int,
    positive_int,
)

__all__ = ["register"]

log = logging.getLogger(__name__)

_SAMPLE_KEYS = ("sampling_benchmark", "n_events_per_job", "n_jobs")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate-events",
        help="run one generator job (a sample × job index) and write its events",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--setup", required=True, help="setup file (setup.h5)")
    p.add_argument("--sample", required=True, help="sample name (a key of generation.samples)")
    p.add_argument(
        "--job", type=non_negative_int, default=0, help="job index within the sample (0-based)"
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        help="global seed (default: the config's seed)",
    )
    p.add_argument("-o", "--output", required=True, help="output: LHE file or event store (.zarr)")
    add_config_argument(p)
    p.add_argument(
        "--attempt",
        type=positive_int,
        default=1,
        help="which attempt this is (Snakemake's, from 1)",
    )
    p.add_argument(
        "--retries",
        type=non_negative_int,
        default=0,
        help="retries the rule allows: the attempt after the last retry is the final one, where a "
        "failure writes a failure marker when generation.max_failed_fraction > 0",
    )
    p.set_defaults(handler=run)


def stage_section(config: dict) -> tuple[dict, int]:
    """(generation section, global seed) from a full config or the section itself, validated
    with the schema's defaults (the global seed's too)."""
    from eftflow.cli.common import validated_section

    section, seed = validated_section(config, "generation")
    return dict(section), seed


def _first(*values):
    """The first value that is not None (a sample's null key falls back to the section's)."""
    return next(v for v in values if v is not None)


def make_job(config: dict, setup, sample: str, job_index: int, output, *, seed: int | None = None):
    """Build the :class:`~eftflow.generate.base.GenerationJob` and the backend name."""
    from eftflow.config import config_hash
    from eftflow.errors import ConfigError
    from eftflow.generate.base import GenerationJob
    from eftflow.generate.seeds import job_seed

    section, config_seed = stage_section(config)
    backend = section.get("backend", "builtin")
    samples = section.get("samples") or {}
    if sample not in samples:
        raise ConfigError(
            f"unknown sample {sample!r}; configured: {', '.join(samples) or 'none'}",
            field="generation.samples",
        )
    spec = dict(samples[sample] or {})
    n_jobs = int(_first(spec.get("n_jobs"), section.get("n_jobs"), 1))
    n_events = int(_first(spec.get("n_events_per_job"), section.get("n_events_per_job"), 10_000))
    if not 0 <= job_index < n_jobs:
        raise ConfigError(
            f"job index {job_index} outside 0..{n_jobs - 1}",
            field=f"generation.samples.{sample}.n_jobs",
        )
    if n_events < 1:
        raise ConfigError("must be positive", field="generation.n_events_per_job")
    global_seed = int(seed if seed is not None else config_seed)
    options = dict(section.get(backend) or {})
    options.update({k: v for k, v in spec.items() if k not in _SAMPLE_KEYS})
    s = job_seed(global_seed, sample, job_index)
    job = GenerationJob(
        sample=sample,
        job_index=job_index,
        n_events=n_events,
        seed=s,
        output=output,
        setup=setup,
        sampling_benchmark=spec.get("sampling_benchmark"),
        options=options,
        provenance={
            "global_seed": global_seed,
            "backend": backend,
            "config_hash": config_hash({"generation": section, "seed": global_seed}),
        },
    )
    return job, backend


#: what each backend writes, by the output name's ending
_OUTPUT_KINDS = {"toy": (".zarr",), "builtin": (".lhe", ".lhe.gz"), "madgraph": (".lhe", ".lhe.gz")}


def _check_output_kind(backend: str, output: str) -> None:
    """Refuse an output name that promises another format than the backend writes."""
    from eftflow.errors import ConfigError

    endings = _OUTPUT_KINDS.get(backend)
    if endings and not output.endswith(endings):
        what = "an event store" if backend == "toy" else "an LHE file"
        raise ConfigError(
            f"the {backend} backend writes {what}: name it *{' or *'.join(endings)}",
            file=output,
            field="-o",
        )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eftflow.generate.registry import get_generator
    from eftflow.setup import EFTSetup

    config = load_stage_config(args.config)
    setup = EFTSetup.from_file(args.setup)
    job, backend = make_job(config, setup, args.sample, args.job, Path(args.output), seed=args.seed)
    _check_output_kind(backend, str(args.output))
    log.info(
        "generate-events: backend %s, sample %s, job %d, seed %d",
        backend,
        job.sample,
        job.job_index,
        job.seed,
    )
    section, _ = stage_section(config)
    tolerance = float(section.get("max_failed_fraction") or 0.0)
    final = args.attempt > args.retries
    try:
        if f"{job.sample}/{job.job_index}" in (section.get("fail_jobs") or []):
            from eftflow.errors import BackendError

            raise BackendError(
                f"job {job.sample}/{job.job_index} fails on purpose (generation.fail_jobs)",
                field="generation.fail_jobs",
            )
        result = get_generator(backend).generate(job)
    except Exception as err:
        from eftflow.errors import ConfigError

        if tolerance <= 0 or not final or isinstance(err, ConfigError):
            if tolerance > 0 and not isinstance(err, ConfigError):
                log.warning("attempt %d of %d failed", args.attempt, args.retries + 1)
            raise
        from eftflow.store.failed import write_failure_marker

        write_failure_marker(
            args.output,
            reason=f"{type(err).__name__}: {err}",
            stage="generate_events",
            sample=job.sample,
            job=job.job_index,
            attempt=args.attempt,
            backend=backend,
        )
        log.error(
            "generator job %s/%d failed at its final attempt %d (%s: %s); "
            "generation.max_failed_fraction = %g: wrote a failure marker at %s and going on",
            job.sample,
            job.job_index,
            args.attempt,
            type(err).__name__,
            err,
            tolerance,
            args.output,
        )
        return 0
    log.info(
        "generated %d events -> %s; cross sections (pb): %s",
        result.n_events,
        result.output,
        json.dumps(result.cross_sections),
    )
    return 0
