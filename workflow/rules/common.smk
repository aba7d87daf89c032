# Shared definitions: config validation, run directory, per-stage config for `params:`.
# Keep this file light: every SLURM job re-parses it (no heavy imports, no globbing).
import json
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, schema="../schemas/config.schema.yaml")

# Rules call the `eftflow` command: make the one next to this Snakemake's Python win, so that
# `.venv/bin/snakemake` works without activating the environment (also inside SLURM jobs).
os.environ.update(
    PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
)

# The `cluster` section (where Dask runs inside a job) reaches the commands through this variable
# (read by `--cluster-config`'s default), not through `params:`: switching between local,
# slurm-runner and slurm-cluster changes no result, so it must not rerun any stage. Jobs inherit
# it; SLURM jobs re-parse this file and set it again.
os.environ.update(
    EFTFLOW_CLUSTER_CONFIG=json.dumps(config.get("cluster") or {}, sort_keys=True)
)

RESULTS = f"results/{config['run_name']}" if config["run_name"] else "results"
LOGS = f"logs/{config['run_name']}" if config["run_name"] else "logs"
ENV = "../../envs/eftflow.yaml"
BENCH = (
    f"benchmarks/runs/{config['run_name']}" if config["run_name"] else "benchmarks/runs"
)


def stage_config(*sections):
    """The named config sections (plus seed) as compact JSON for a rule's `params:`.

    A change to these sections reruns exactly the rules that use them."""
    data = {key: config[key] for key in ("seed", *sections)}
    return config_json(data)


def config_json(data):
    """Compact JSON for a single-quoted shell argument (a ' inside is written as \\u0027)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).replace(
        "'", "\\u0027"
    )


GEN_BACKEND = config["generation"]["backend"]
# retries of a generator job; with generation.max_failed_fraction > 0 the attempt after the last
# retry writes a failure marker instead of failing (`--attempt`/`--retries` of generate-events)
GEN_RETRIES = 2


def generation_jobs():
    """[(sample, job index), ...] of every generator job, from the `generation` section."""
    section = config["generation"]
    out = []
    for sample, spec in section["samples"].items():
        n_jobs = int((spec or {}).get("n_jobs") or section["n_jobs"])
        out += [(sample, job) for job in range(n_jobs)]
    return out


def sampling_option(sample):
    """`--sampling-benchmark NAME` when the config names the sample's sampling benchmark."""
    spec = config["generation"]["samples"].get(sample) or {}
    name = spec.get("sampling_benchmark")
    return f"--sampling-benchmark {name}" if name else ""


def generated_outputs():
    ext = "zarr" if GEN_BACKEND == "toy" else "lhe.gz"
    return [
        f"{RESULTS}/generate_events/{sample}/{job}.{ext}"
        for sample, job in generation_jobs()
    ]


def analysed_stores(wildcards=None):
    """The event stores (observables + weights) that combine_events merges."""
    if GEN_BACKEND == "toy":
        return generated_outputs()
    return [
        f"{RESULTS}/analyse_events/{sample}/{job}.zarr"
        for sample, job in generation_jobs()
    ]


def detector_jobs():
    """The (sample, job) pairs that go through shower, detector and analysis."""
    return [] if GEN_BACKEND == "toy" else generation_jobs()


def scan_files():
    """Scan name -> scan file, from the `scan` section."""
    return config["scan"]["files"]


def all_targets():
    """Everything `rule all` builds."""
    return [
        f"{RESULTS}/setup/setup.h5",
        f"{RESULTS}/setup/morphing_basis.png",
        f"{RESULTS}/combine_events/events.zarr",
        f"{RESULTS}/compute_fisher_information/fisher_information.json",
        f"{RESULTS}/compute_limits/limits.json",
        f"{RESULTS}/augment_samples",
        f"{RESULTS}/evaluate_estimator/evaluation.json",
        f"{RESULTS}/report/report.html",
    ]
