"""Section "Overview": the run at a glance (numbers gathered from the other results)."""

from __future__ import annotations

import json
import logging

from eftflow.report import html as H
from eftflow.report.registry import ReportContext, SectionSkipped, report_section

__all__ = ["config_mismatches", "SETUP_SECTIONS"]

log = logging.getLogger(__name__)

#: the config sections rule ``setup`` passes to ``eftflow setup`` (workflow/rules/setup.smk); the
#: setup file's provenance records the hash of exactly these (validated, defaults filled)
SETUP_SECTIONS = (
    "seed",
    "parameters",
    "benchmarks",
    "morphing",
    "finite_differences",
    "systematics",
)


def _setup_record(ctx: ReportContext) -> tuple[list[str], dict] | None:
    """(parameter names, provenance) of the run's setup file, or None when there is none."""
    path = ctx.path("setup", "setup.h5")
    if not path.exists():
        return None

    def read():
        from eftflow.setup import EFTSetup

        names = list(EFTSetup.from_file(path).parameter_names)
        import h5py

        with h5py.File(path, "r") as f:
            prov = json.loads(f.attrs.get("provenance", "{}"))
        return names, prov if isinstance(prov, dict) else {}

    return ctx.cached("setup_record", read)


def config_mismatches(ctx: ReportContext) -> list[str]:
    """Why the given config is not the one the results were made with (empty: no sign of that).

    Compares the config's parameter names with the setup file's, and the hash of the config
    sections rule ``setup`` uses (:data:`SETUP_SECTIONS`) with the ``config_hash`` the setup
    file's provenance records. Nothing is compared without a config or a setup file.
    """
    cfg = ctx.config
    if not cfg:
        return []
    try:
        record = _setup_record(ctx)
    except Exception as err:  # an unreadable setup file is reported by its own section
        log.debug("setup file not readable for the config check: %s", err)
        return []
    if record is None:
        return []
    names, prov = record
    setup_file = ctx.display(ctx.path("setup", "setup.h5"))
    out = []
    given = [p.get("name") for p in cfg.get("parameters") or [] if isinstance(p, dict)]
    if given and given != names:
        out.append(
            f"the config's parameters ({', '.join(map(str, given))}) are not those of "
            f"{setup_file} ({', '.join(names)})"
        )
    recorded = prov.get("config_hash")
    if recorded and all(k in cfg for k in SETUP_SECTIONS):
        from eftflow.config import config_hash, validate_config
        from eftflow.errors import ConfigError

        try:
            sections = validate_config(json.loads(json.dumps({k: cfg[k] for k in SETUP_SECTIONS})))
        except ConfigError as err:
            out.append(f"the config does not validate ({err})")
        else:
            mine = config_hash(sections)
            if mine != recorded:
                out.append(
                    f"the hash of its setup sections ({', '.join(SETUP_SECTIONS)}) is {mine}, "
                    f"{setup_file} was made with {recorded}"
                )
    return out


def _dask_mode(cfg) -> tuple[str, str]:
    """The Dask mode row: from the config's ``cluster`` section, else from the environment (the
    workflow passes that section outside the rules' params, so its report config lacks it)."""
    if isinstance(cfg.get("cluster"), dict):
        return ("Dask mode", cfg["cluster"].get("mode", "local"))
    from eftflow.cluster.settings import cluster_config_from_env
    from eftflow.errors import ConfigError

    try:
        env = cluster_config_from_env()
    except ConfigError:  # the stages report a malformed variable themselves
        env = None
    mode = (env or {}).get("mode", "local") if env is not None else "local (default)"
    return ("Dask mode (cluster setting when the report was made)", mode)


@report_section("Overview", order=10)
def overview(ctx: ReportContext) -> str:
    cfg = ctx.config
    rows = []
    if cfg:
        from eftflow.config import config_hash

        gen = cfg.get("generation") or {}
        rows += [
            ("run name", cfg.get("run_name") or "(none: results/)"),
            ("config hash", config_hash(dict(cfg))),
            ("global seed", cfg.get("seed")),
            ("parameters", ", ".join(p.get("name", "?") for p in cfg.get("parameters") or [])),
            ("generator backend", gen.get("backend")),
            ("samples × jobs", ", ".join(
                f"{s} × {(v or {}).get('n_jobs') or gen.get('n_jobs')}"
                for s, v in (gen.get("samples") or {}).items())),
            ("tolerated failed generator jobs", gen.get("max_failed_fraction", 0.0)),
        ]  # fmt: skip
        rows.append(_dask_mode(cfg))
    try:
        store = ctx.combined_store()
        rows.append(("events in the combined store", store.n_events))
        parts = store.partitions or {}
        if parts:
            rows.append(("partitions", ", ".join(f"{k} {b - a}" for k, (a, b) in parts.items())))
        lost = store.attrs.get("lost_jobs")
        rows.append(
            ("lost generator jobs", f"{lost['n_lost']} of {lost['n_inputs']}" if lost else "none")
        )
    except SectionSkipped as why:
        rows.append(("combined store", f"missing ({why})"))
    rows.append(("results directory", ctx.display(ctx.results)))
    if ctx.benchmarks is not None:
        rows.append(("benchmark files", ctx.display(ctx.benchmarks)))
    out = ""
    mismatches = config_mismatches(ctx)
    if mismatches:
        log.warning(
            "the config given to the report does not match the results in %s: %s; the overview "
            "shows the config's values (give the run's own config, or its results directory)",
            ctx.display(ctx.results),
            "; ".join(mismatches),
        )
        out += H.note(
            "The config given does not match these results: "
            + "; ".join(mismatches)
            + ". The run name, seed, parameters and other settings below come from that config, "
            "not from the run that made the results.",
            "warn",
        )
    out += H.table(rows, cls="kv")
    if cfg:
        out += H.details("the configuration of this run", H.json_block(dict(cfg)))
    return out
