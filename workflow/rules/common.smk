# Shared definitions: config validation, run directory, per-stage config for `params:`.
# Keep this file light: every SLURM job re-parses it (no heavy imports, no globbing).
import json
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


def _validate_config():
    """One line naming the config file(s) and the key, e.g. `config.yaml: generation.n_jobs:
    must be >= 1`, and the defaults filled, as every eftflow command does; Snakemake's own
    validator when eftflow is not importable here."""
    try:
        from eftflow.config import check_benchmark_references, validate_config
        from eftflow.errors import ConfigError
    except ImportError:
        validate(config, schema="../schemas/config.schema.yaml")
        return
    files = [str(f) for f in workflow.overwrite_configfiles] or ["config/config.yaml"]
    # keys given on the command line (`--config key=value`) are named as such
    cli = sorted(
        getattr(getattr(workflow, "config_settings", None), "config", None) or {}
    )
    source = " + ".join(files + ([f"--config {','.join(cli)}"] if cli else []))
    try:
        validate_config(config, file=source)
        check_benchmark_references(config, file=source)
    except ConfigError as err:
        top = (err.field or "").split(".")[0].split("[")[0]
        if top in cli:
            err = ConfigError(err.message, file=f"--config {top}=...", field=err.field)
        raise ValueError(f"invalid configuration: {err}") from None


_validate_config()

# Rules call the `eftflow` command: make the one next to this Snakemake's Python win, so that
# `.venv/bin/snakemake` works without activating the environment (also inside SLURM jobs).
os.environ.update(
    PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
)

# The `cluster` section (where Dask runs inside a job) reaches the commands through this variable
# (read by `--cluster-config`'s default, and by eftflow.cluster.dask_client when a command is given
# no cluster settings, as train-ensemble), not through `params:`: switching between local,
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


def plot_arguments():
    """`--benchmarks` and `--observables` of plot-distributions: the config's declared benchmarks
    and the analysis' own observables (none: the command's defaults), shell-quoted."""
    import shlex

    args = []
    names = [b["name"] for b in config.get("benchmarks", []) if b.get("name")]
    if names:
        args += ["--benchmarks", *names]
    return " ".join([*(shlex.quote(a) for a in args), observables_arguments()]).strip()


GEN_BACKEND = config["generation"]["backend"]
# retries of a generator job; with generation.max_failed_fraction > 0 the attempt after the last
# retry writes a failure marker instead of failing (`--attempt`/`--retries` of generate-events)
GEN_RETRIES = 2
# inside a job that Snakemake spawned (a SLURM job, its job step) each job runs once; retries
# belong to the main process, which resubmits. The `retries` directive would otherwise be applied
# again by each inner Snakemake, nesting the attempts (3 x 3 x ... runs of a failing job).
SPAWNED = workflow.remote_exec or workflow.subprocess_exec
RULE_RETRIES = 0 if SPAWNED else GEN_RETRIES


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


# MPI ranks of a scan job: `tasks` (and Snakemake's `mpi` launcher resource, which the SLURM
# executor turns into one job with that many tasks) only when more than one rank is asked for
SCAN_TASKS = int(config["scan"]["tasks"])
SCAN_MPI = {"tasks": SCAN_TASKS, "mpi": config["scan"]["mpi"]} if SCAN_TASKS > 1 else {}
SCAN_LAUNCHER = f"{config['scan']['mpi']} -n {SCAN_TASKS} " if SCAN_TASKS > 1 else ""


DEMO = config["model"]["demo"]


def model_specs():
    """Model name -> spec file: config `model.specs`, plus the workflow's own model (written by
    rule write_model_spec) when `model.demo.enabled`."""
    specs = dict(config["model"]["specs"])
    if DEMO["enabled"]:
        if DEMO["name"] in specs:
            raise ValueError(
                f"model.demo.name {DEMO['name']!r} is also a key of model.specs: rename one"
            )
        specs[DEMO["name"]] = f"{RESULTS}/write_model_spec/{DEMO['name']}.yaml"
    return specs


def nuisance_shapes_enabled():
    """Whether the workflow's model takes the shapes of nuisance parameters (rule
    train_nuisance_shapes): model.demo.nuisance_shapes.enabled and a scale or pdf systematic.
    """
    shapes = DEMO["nuisance_shapes"]
    types = {s.get("type") for s in config.get("systematics") or []}
    return bool(DEMO["enabled"] and shapes["enabled"] and types & {"scale", "pdf"})


def nuisance_shapes_input(wildcards):
    """write_model_spec's extra input: the up/down networks, when they are used."""
    if nuisance_shapes_enabled():
        return {"shapes": f"{RESULTS}/train_nuisance_shapes"}
    return {}


def observables_arguments(flag="--observables"):
    """`flag` with the analysis' own observables (none: empty), shell-quoted."""
    import shlex

    obs = [o["name"] for o in (config.get("analysis") or {}).get("observables", [])]
    return " ".join(shlex.quote(a) for a in [flag, *obs]) if obs else ""


def model_threads(wildcards):
    """Threads of a model's jobs: 1 for the workflow's own model (a small pool: more torch
    threads only add overhead on shared cores), 2 for the models of `model.specs`."""
    return 1 if DEMO["enabled"] and wildcards.name == DEMO["name"] else 2


# The kinds of augmented set (augmentation.samples[].method) each training.method trains on; the
# same table as eftflow.ml.data.SAMPLE_KINDS (tests/orchestration keeps the two equal).
TRAINING_SET_KINDS = {
    "carl": ["ratio", "more_ratios"],
    "rolr": ["ratio", "more_ratios"],
    "rascal": ["ratio", "more_ratios"],
    "alice": ["ratio", "more_ratios"],
    "alices": ["ratio", "more_ratios"],
    "cascal": ["ratio", "more_ratios"],
    "sally": ["local"],
    "sallino": ["local"],
    "nde": ["density", "plain"],
    "scandal": ["density"],
}


def check_training_set():
    """Refuse, before anything runs, a `training.training_set` that is not among
    `augmentation.samples` or whose method does not suit `training.method` (train_estimator,
    train_ensemble and evaluate_estimator would otherwise fail only when their turn comes).
    """
    method = config["training"]["method"]
    name = config["training"]["training_set"]
    sets = {s["name"]: s["method"] for s in config["augmentation"]["samples"]}
    allowed = TRAINING_SET_KINDS.get(method)
    if allowed is None:
        raise ValueError(
            f"training.method {method!r} is not one of {', '.join(TRAINING_SET_KINDS)}"
        )
    if name not in sets:
        raise ValueError(
            f"training.training_set {name!r} is not among augmentation.samples (names: "
            f"{', '.join(sets) or 'none'}); name a set of method {' or '.join(allowed)}, "
            f"as training.method {method!r} needs"
        )
    if sets[name] not in allowed:
        suitable = [n for n, m in sets.items() if m in allowed]
        raise ValueError(
            f"training.training_set {name!r} is an augmentation set of method "
            f"{sets[name]!r}; training.method {method!r} needs one of method "
            f"{' or '.join(allowed)}"
            + (f" (here: {', '.join(suitable)})" if suitable else "")
        )


def training_config(*sections):
    """`training`, `ensemble` (and `sections`) for the estimator rules' params, after
    check_training_set()."""
    check_training_set()
    return stage_config("training", "ensemble", *sections)


def ratio_training_config():
    """`training` and `ensemble` for train_ratio_ensemble, with the keys set in
    `model.demo.estimator` replacing those of `training`/`ensemble`. (The `cluster` section
    reaches the job through EFTFLOW_CLUSTER_CONFIG, not through params: see above.)"""
    est = DEMO["estimator"]
    sets = {s["name"]: s["method"] for s in config["augmentation"]["samples"]}
    if DEMO["enabled"] and sets.get(est["training_set"]) not in ("ratio", None):
        raise ValueError(
            f"model.demo.estimator.training_set {est['training_set']!r} is an augmentation "
            f"set of method {sets[est['training_set']]!r}; the ratio ensemble needs method ratio"
        )
    if DEMO["enabled"] and est["training_set"] not in sets:
        raise ValueError(
            f"model.demo.estimator.training_set {est['training_set']!r} is not among "
            "augmentation.samples (add a set of method ratio, or set model.demo.enabled: false)"
        )
    training = dict(config["training"])
    training.update(
        {k: v for k, v in est.items() if k != "n_members" and v is not None}
    )
    ensemble = dict(config["ensemble"], n_members=est["n_members"])
    data = {"training": training, "ensemble": ensemble}
    return config_json({"seed": config["seed"], **data})


def config_without_cluster():
    """The whole config less its `cluster` section (for the report's params; see above)."""
    return {key: value for key, value in config.items() if key != "cluster"}


def inference_results():
    """The inference result directory of every model (rule run_inference)."""
    return [f"{RESULTS}/run_inference/{name}" for name in model_specs()]


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
        *inference_results(),
        f"{RESULTS}/report/report.html",
    ]
