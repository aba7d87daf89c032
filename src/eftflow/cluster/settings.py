"""The ``cluster`` config section: its JSON-schema fragment, validation and time helpers.

The fragment :data:`CLUSTER_SCHEMA` is the ``properties.cluster`` entry of the project's config
schema (``workflow/schemas/config.schema.yaml``); :func:`resolve_cluster_settings` validates a
``cluster`` mapping against it and fills in the defaults, so that :func:`eftflow.cluster.dask_client`
works on a bare ``{}`` or ``None`` too.

Example
-------
>>> s = resolve_cluster_settings({"mode": "slurm-cluster", "slurm": {"walltime": "02:00:00"}})
>>> s["slurm"]["cores"], worker_lifetime(s["slurm"])
(1, ('6600s', '300s'))
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from eftflow.errors import ConfigError

__all__ = [
    "CLUSTER_SCHEMA",
    "CLUSTER_ENV",
    "MODES",
    "cluster_config_from_env",
    "resolve_cluster_settings",
    "parse_duration",
    "worker_lifetime",
    "slurm_time",
    "use_dask",
    "STAGGER_FRACTION",
    "MIN_WORKER_SECONDS",
    "MIN_WALLTIME",
]

MODES = ("local", "slurm-runner", "slurm-cluster")

#: environment variable holding the ``cluster`` section as JSON; the workflow sets it from the
#: config (workflow/rules/common.smk) instead of passing the section through the rules' params,
#: so that changing where Dask runs reruns no job
CLUSTER_ENV = "EFTFLOW_CLUSTER_CONFIG"

#: the lifetime stagger is cut to at most this fraction of the worker lifetime
STAGGER_FRACTION = 0.25

#: a worker must be able to run at least this long (start-up and some work) before it is retired
MIN_WORKER_SECONDS = 60

#: a walltime that always leaves a worker :data:`MIN_WORKER_SECONDS` with the default lifetime
MIN_WALLTIME = "00:02:00"

_DURATION = {
    "type": ["string", "null"],
    "pattern": r"^\s*(\d+(-\d+)?(:\d+){0,2}|\d+(\.\d+)?\s*[smhd])\s*$",
}

#: JSON-schema fragment of the ``cluster`` section (``properties.cluster`` of the config schema).
CLUSTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "default": {},
    "description": (
        "Where the Dask steps inside a stage run (eftflow.cluster). local: a LocalCluster sized "
        "from the rule's threads and mem_mb; slurm-runner: Dask spread over the tasks of the "
        "Snakemake job's own SLURM allocation (run the command under srun, >= 3 tasks); "
        "slurm-cluster: the job submits adaptive Dask worker jobs with dask-jobqueue."
    ),
    "properties": {
        "mode": {
            "enum": list(MODES),
            "default": "local",
            "description": "local, slurm-runner (recommended on HPC) or slurm-cluster.",
        },
        "dashboard_address": {
            "type": "string",
            "default": ":8787",
            "description": (
                "host:port the Dask dashboard listens on (':8787' all interfaces, port 8787; "
                "':0' a free port). The link is the first log line of every Dask step."
            ),
        },
        "startup_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 600,
            "description": (
                "Seconds to wait for the first Dask workers; after that the step fails with a "
                "message and its worker jobs are cancelled."
            ),
        },
        "local": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "Settings of mode local.",
            "properties": {
                "processes": {
                    "type": "boolean",
                    "default": True,
                    "description": "Workers are processes (true; Python-heavy chunks) or threads.",
                },
                "threads_per_worker": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 1,
                    "description": "Threads per worker; n_workers = rule threads / this.",
                },
                "client_memory_mb": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "default": None,
                    "description": (
                        "MB of the job's mem_mb kept for the stage's own process (scheduler, "
                        "client, the stage's buffers) when workers are processes; the rest is "
                        "split between the workers. Default: 10 % of mem_mb, at least 256 MB "
                        "and at most 2048 MB."
                    ),
                },
            },
        },
        "slurm": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "description": "Settings of modes slurm-cluster (worker jobs) and slurm-runner.",
            "properties": {
                "cores": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 1,
                    "description": "Cores per worker job (slurm-cluster).",
                },
                "processes": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 1,
                    "description": "Dask worker processes per worker job (slurm-cluster).",
                },
                "memory": {
                    "type": "string",
                    "default": "4GB",
                    "description": "Memory per worker job, e.g. '4GB' (slurm-cluster).",
                },
                "walltime": {
                    "type": "string",
                    "default": "01:00:00",
                    "pattern": _DURATION["pattern"],
                    "description": "Time limit of each worker job, [D-]HH:MM:SS (slurm-cluster).",
                },
                "lifetime": {
                    **_DURATION,
                    "default": None,
                    "description": (
                        "Worker --lifetime: a worker hands its work over and leaves after this "
                        "long, before SLURM kills it; adaptive scaling replaces it. null: the "
                        "walltime minus 5 minutes (minus 10% for walltimes under an hour) minus "
                        "the stagger."
                    ),
                },
                "lifetime_stagger": {
                    **_DURATION,
                    "default": "5m",
                    "description": "Worker --lifetime-stagger: random spread so workers do not all leave at once.",
                },
                "queue": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "SLURM partition of the worker jobs (null: the cluster default).",
                },
                "account": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": "SLURM account of the worker jobs (null: none given).",
                },
                "interface": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": (
                        "Network interface of scheduler and workers, e.g. 'ib0' or 'lo' (null: the "
                        "host's default address)."
                    ),
                },
                "local_directory": {
                    "type": ["string", "null"],
                    "default": None,
                    "description": (
                        "Node-local disk for worker spill files, e.g. '$TMPDIR' or '/tmp' "
                        "(environment variables are expanded on the worker node)."
                    ),
                },
                "job_extra_directives": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": [],
                    "description": "Extra '#SBATCH' options of the worker jobs, e.g. ['--qos=short'].",
                },
                "log_directory": {
                    "type": "string",
                    "default": "logs/dask",
                    "description": "Directory of the worker jobs' SLURM output files.",
                },
                "n_workers": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "default": None,
                    "description": "A fixed number of worker jobs; null: adaptive between the bounds below.",
                },
                "adaptive": {
                    "type": "object",
                    "additionalProperties": False,
                    "default": {},
                    "description": "Bounds of adaptive scaling (slurm-cluster with n_workers null).",
                    "properties": {
                        "minimum": {
                            "type": "integer",
                            "minimum": 0,
                            "default": 1,
                            "description": "Worker jobs kept even when idle.",
                        },
                        "maximum": {
                            "type": "integer",
                            "minimum": 1,
                            "default": 8,
                            "description": "At most this many worker jobs.",
                        },
                    },
                },
                "scheduler_file": {
                    "type": "string",
                    "default": ".eftflow/dask/scheduler-{job_id}.json",
                    "description": (
                        "slurm-runner: scheduler file on a filesystem every node sees ({job_id} is "
                        "the SLURM job id)."
                    ),
                },
            },
        },
    },
}


def cluster_config_from_env() -> dict | None:
    """The ``cluster`` section from ``$EFTFLOW_CLUSTER_CONFIG`` (JSON), or None when unset/empty.

    Raises
    ------
    ConfigError
        When the variable is not a JSON object.
    """
    text = os.environ.get(CLUSTER_ENV, "").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"${CLUSTER_ENV} is not valid JSON: {err.msg}", file=f"${CLUSTER_ENV}", field="cluster"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"${CLUSTER_ENV} must be a JSON object, got {type(data).__name__}",
            file=f"${CLUSTER_ENV}",
            field="cluster",
        )
    return data


def resolve_cluster_settings(config: Mapping | None, *, file: str | None = None) -> dict:
    """Validate a ``cluster`` mapping and return a completed copy (defaults filled in).

    ``config`` may also be a whole eftflow configuration (it then has a ``cluster`` key and the
    section is taken from it). Errors name the key as ``cluster.<path>``.

    Raises
    ------
    ConfigError
        When a key is unknown, has the wrong type, or the lifetime does not fit in the walltime.
    """
    from eftflow.config import validate_config

    data = {} if config is None else config
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"expected a mapping, got {type(data).__name__}", file=file, field="cluster"
        )
    if "cluster" in data and isinstance(data["cluster"], Mapping | None):
        data = data["cluster"] or {}
    schema = {"type": "object", "properties": {"cluster": CLUSTER_SCHEMA}}
    wrapped = validate_config({"cluster": copy.deepcopy(dict(data))}, file=file, schema=schema)
    settings = wrapped["cluster"]
    slurm = settings["slurm"]
    if slurm["adaptive"]["minimum"] > slurm["adaptive"]["maximum"]:
        raise ConfigError(
            f"minimum {slurm['adaptive']['minimum']} > maximum {slurm['adaptive']['maximum']}",
            file=file,
            field="cluster.slurm.adaptive",
        )
    worker_lifetime(slurm, file=file)  # checks that workers fit in the walltime
    return settings


def parse_duration(value: str, *, file: str | None = None, field: str = "") -> int:
    """Seconds in a SLURM time (``[D-]HH:MM:SS``, ``MM:SS``, ``MM``, ``D-HH[:MM]``) or ``'90s'``/``'55m'``/``'2h'``/``'1d'``.

    >>> parse_duration("1-00:00:00"), parse_duration("00:30:00"), parse_duration("5m")
    (86400, 1800, 300)
    >>> parse_duration("1-12"), parse_duration("30")  # SLURM: days-hours; minutes
    (129600, 1800)
    """
    text = str(value).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
    if m:
        return int(float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)])
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise ConfigError(
            f"expected a duration like '01:30:00', '2-00:00:00', '55m' or '90s', got {value!r}",
            file=file,
            field=field,
        )
    days = int(m.group(1) or 0)
    parts = [int(p) for p in m.group(2, 3, 4) if p is not None]
    if len(parts) == 1:  # SLURM: "MM", or "D-HH" with a day part
        seconds = parts[0] * 3600 if m.group(1) else parts[0] * 60
    elif len(parts) == 2:  # "MM:SS" (or "HH:MM" with a day part, as SLURM reads "D-HH:MM")
        seconds = parts[0] * 3600 + parts[1] * 60 if m.group(1) else parts[0] * 60 + parts[1]
    else:
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    return days * 86400 + seconds


def worker_lifetime(slurm: Mapping, *, file: str | None = None) -> tuple[str, str]:
    """The worker ``--lifetime`` and ``--lifetime-stagger`` (as ``'<n>s'``) for a ``cluster.slurm`` section.

    Dask gives each worker a lifetime drawn uniformly from ``lifetime +- stagger``. The stagger
    is therefore cut to at most a quarter of the lifetime (:data:`STAGGER_FRACTION`), so no
    worker is retired right after it starts, and ``lifetime + stagger`` must end before the
    walltime. A null ``lifetime`` becomes the walltime minus a margin (5 minutes, or 10% for
    walltimes under an hour) minus the stagger, so a worker leaves gracefully before SLURM
    kills its job.

    >>> worker_lifetime({"walltime": "00:10:00", "lifetime_stagger": "5m", "lifetime": None})
    ('432s', '108s')

    Raises
    ------
    ConfigError
        When lifetime + stagger does not end before the walltime, or when a worker could be
        retired less than :data:`MIN_WORKER_SECONDS` after it started (walltime or lifetime too
        short to run a worker at all).
    """
    walltime = parse_duration(slurm["walltime"], file=file, field="cluster.slurm.walltime")
    requested = parse_duration(
        slurm["lifetime_stagger"] or "0s", file=file, field="cluster.slurm.lifetime_stagger"
    )
    if slurm.get("lifetime") is None:
        margin = 300 if walltime >= 3600 else max(walltime // 10, 1)
        usable = walltime - margin  # every worker must have left by then
        # lifetime + stagger = usable with stagger <= STAGGER_FRACTION * lifetime
        stagger = min(requested, int(usable * STAGGER_FRACTION / (1 + STAGGER_FRACTION)))
        lifetime = usable - stagger
        if lifetime - stagger < MIN_WORKER_SECONDS:
            raise ConfigError(
                f"walltime {slurm['walltime']!r} is too short for a Dask worker job: after the "
                f"margin before SLURM's time limit ({margin} s) and the lifetime stagger, a worker "
                f"could be retired {max(lifetime - stagger, 0)} s after it started; give at least "
                f"{MIN_WALLTIME!r}",
                file=file,
                field="cluster.slurm.walltime",
            )
    else:
        lifetime = parse_duration(slurm["lifetime"], file=file, field="cluster.slurm.lifetime")
        stagger = min(requested, int(lifetime * STAGGER_FRACTION))
        if lifetime + stagger >= walltime:
            raise ConfigError(
                f"lifetime {slurm['lifetime']!r} + stagger {stagger} s must end before the "
                f"walltime {slurm['walltime']!r}, or SLURM kills workers mid-task",
                file=file,
                field="cluster.slurm.lifetime",
            )
        if lifetime - stagger < MIN_WORKER_SECONDS:
            raise ConfigError(
                f"lifetime {slurm['lifetime']!r} is too short: with a stagger of {stagger} s a "
                f"worker could be retired {max(lifetime - stagger, 0)} s after it started; give "
                f"at least {MIN_WORKER_SECONDS * 2} s (or null: derived from the walltime)",
                file=file,
                field="cluster.slurm.lifetime",
            )
    return f"{lifetime}s", f"{stagger}s"


def slurm_time(
    value: str, *, file: str | None = None, field: str = "cluster.slurm.walltime"
) -> str:
    """A duration as SLURM's ``--time`` wants it: ``HH:MM:SS`` or ``D-HH:MM:SS``.

    The schema also accepts ``'2h'`` or ``'90m'``, which ``sbatch`` refuses.

    >>> slurm_time("2h"), slurm_time("01:00:00"), slurm_time("1-12:00"), slurm_time("90s")
    ('02:00:00', '01:00:00', '1-12:00:00', '00:01:30')
    """
    seconds = parse_duration(value, file=file, field=field)
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def use_dask(config: Mapping | None, threads: int) -> bool:
    """Whether a step should start Dask at all: not for mode local with a single thread.

    Stages call their chunk function serially when this is false (a one-worker LocalCluster only
    adds start-up time); the SLURM modes always use Dask.

    >>> use_dask(None, 1), use_dask(None, 4), use_dask({"mode": "slurm-cluster"}, 1)
    (False, True, True)
    """
    return resolve_cluster_settings(config)["mode"] != "local" or int(threads or 1) > 1
