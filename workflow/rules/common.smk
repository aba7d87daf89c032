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
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def all_targets():
    """Everything `rule all` builds (extended by each stage's rules)."""
    return [f"{RESULTS}/setup/setup.h5", f"{RESULTS}/setup/morphing_basis.png"]
