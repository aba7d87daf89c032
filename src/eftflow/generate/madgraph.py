"""The ``madgraph`` generator: drive a user-installed MG5_aMC (3.5.x or 3.6.x) at parton level.

Per (MG install, model, process) the process directory is made once with ``mg5_aMC`` (proc card
``import model`` / ``generate`` / ``output``) and cached under ``cache_dir``, guarded by a file
lock (``fcntl.flock``) so that concurrent jobs share one ``output``. Each job then works in a
private copy of that directory, next to its output:

1. ``Cards/run_card.dat``: ``nevents``, ``iseed`` = the job's seed (unique per sample and job,
   :func:`~eftflow.generate.seeds.job_seed`), ``use_syst``, ``event_norm = sum`` (Σ weights = σ)
   and the ``run_card`` settings of the config;
2. ``Cards/param_card.dat``: the model's default card with every parameter's LHA entry set to
   ``Parameter.card_value(θ)`` at the sampling benchmark;
3. ``Cards/reweight_card.dat``: ``change helicity False`` (unless ``change_helicity``),
   ``change mode LO``, then ``launch --rwgt_name=<benchmark>`` with a ``set <block> <id> <value>``
   line for every parameter, for every physics benchmark;
4. ``bin/generate_events <run> -f`` with stdin ``/dev/null``; stdout and stderr go to
   ``<output>.log``.

MadGraph exits 0 when it fails, so the log is scanned (``Command "..." interrupted``, error
lines), debug files (``MG5_debug``, ``ME5_debug``, ``*_debug.log``) are looked for and the LHE file
must exist; any of these raises :class:`~eftflow.errors.BackendError` quoting the last relevant
log lines and the log path, and nothing is left at the output. On success
``Events/<run>/unweighted_events.lhe.gz`` is checked with :class:`~eftflow.generate.lhe.LHEReader`
(every benchmark is a weight id, weights finite) and moved atomically to ``job.output``; the
provenance (MG version, iseed, card hashes, cross sections) goes to ``<output>.json``.

Options (``generation.madgraph``): see :data:`DEFAULTS` and ``docs/generate-madgraph.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import numpy as np

from eftflow.errors import BackendError, ConfigError, InputError
from eftflow.generate.base import GenerationJob, GenerationResult
from eftflow.generate.madgraph_cards import (
    SYSTEMATICS_SKIPPED,
    proc_card,
    process_lines,
    read_mg_version,
    reweight_card,
    scan_log,
    set_param_card,
    set_run_card,
    systematics_arguments,
)
from eftflow.store.atomic import atomic_path, remove_path

__all__ = ["MadGraphGenerator", "DEFAULTS", "resolve_mg_dir", "default_cache_dir"]

log = logging.getLogger(__name__)

#: option defaults of ``generation.madgraph`` (``mg_dir`` None: the MG5_HOME environment variable)
DEFAULTS: dict = {
    "mg_dir": None,
    "model": "sm",
    "process": None,
    "run_card": {},
    "change_helicity": False,
    "reweight_mode": "LO",
    "use_syst": None,
    "cache_dir": None,
    "nb_core": None,
    "timeout": None,
    "python": None,
    "keep_workdir": False,
    "work_dir": None,
    "negative_weights": "error",
}
_FORCED = ("nevents", "iseed")
#: MadEvent refuses seeds above 30081² ("Random seed too large"); it adds small offsets per step
MAX_ISEED = 30081 * 30081 - 100_000
_FIELD = "generation.madgraph"


def resolve_mg_dir(options: dict) -> Path:
    """The MG5_aMC directory: option ``mg_dir``, else the ``MG5_HOME`` environment variable."""
    mg = options.get("mg_dir") or os.environ.get("MG5_HOME")
    if not mg:
        raise ConfigError(
            "no MadGraph5_aMC@NLO install configured: set generation.madgraph.mg_dir or the "
            "MG5_HOME environment variable to the MG5_aMC directory (it is not installed by eftflow)",
            field=f"{_FIELD}.mg_dir",
        )
    return Path(mg).expanduser().resolve()


def default_cache_dir() -> Path:
    """``$EFTFLOW_MG_CACHE``, else ``$XDG_CACHE_HOME/eftflow/madgraph`` (``~/.cache/...``)."""
    env = os.environ.get("EFTFLOW_MG_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eftflow" / "madgraph"


def _sha256(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive ``flock`` on ``path`` (works between processes and between threads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class MadGraphGenerator:
    """The ``madgraph`` backend (see the module docstring)."""

    name = "madgraph"

    # --- the job ---------------------------------------------------------------------------
    def generate(self, job: GenerationJob) -> GenerationResult:
        opts = {**DEFAULTS, **(job.options or {})}
        output = Path(job.output)
        if not output.name.endswith(".lhe.gz"):
            raise ConfigError(
                f"the madgraph backend writes gzip LHE: the output must end in .lhe.gz, got {output.name!r}",
                file=output,
                field="output",
            )
        if job.n_events < 1:
            raise ConfigError("n_events must be positive", field="generation.n_events_per_job")
        if not 1 <= int(job.seed) <= MAX_ISEED:
            raise ConfigError(
                f"the job seed {job.seed} is not a valid MadGraph iseed: it must be in "
                f"1..{MAX_ISEED} (0 makes MadGraph pick its own seed, larger ones are refused)",
                field="seed",
            )
        setup = job.setup
        physics = setup.physics_benchmarks()
        bench_names = [b.name for b in physics]
        s_name = job.sampling_benchmark or bench_names[0]
        if s_name not in bench_names:
            raise ConfigError(
                f"sampling benchmark {s_name!r} is not a physics benchmark of the setup "
                f"({', '.join(bench_names)})",
                field=f"generation.samples.{job.sample}.sampling_benchmark",
            )
        run_settings = dict(opts.get("run_card") or {})
        clash = [k for k in run_settings if k.lower() in _FORCED]
        if clash:
            raise ConfigError(
                f"{clash[0]} is set by eftflow (n_events_per_job and the job seed), not in run_card",
                field=f"{_FIELD}.run_card.{clash[0]}",
            )
        mg_dir = resolve_mg_dir(opts)
        version = read_mg_version(mg_dir)
        procdir, proc_text, proc_hash = self._process_dir(mg_dir, version, opts)

        # cards
        params = list(setup.parameters.values())
        keys = [(p.lha_block.lower(), int(p.lha_id)) for p in params]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ConfigError(
                f"two parameters share the LHA entry {dup[0][0]} {dup[0][1]}", field="parameters"
            )
        names = dict(zip(keys, (p.name for p in params)))
        default_param = (procdir / "Cards" / "param_card.dat").read_text()
        theta_s = setup.benchmarks[s_name].values
        param_text = set_param_card(
            default_param,
            {k: p.card_value(theta_s[p.name]) for k, p in zip(keys, params)},
            names=names,
            path=procdir / "Cards" / "param_card.dat",
        )
        rw_text = reweight_card(
            [
                (
                    b.name,
                    [(k[0], k[1], p.card_value(b.values[p.name])) for k, p in zip(keys, params)],
                )
                for b in physics
            ],
            change_helicity=bool(opts.get("change_helicity")),
            mode=opts.get("reweight_mode"),
        )
        settings, syst_args = self._systematics_settings(setup, opts)
        settings = {"event_norm": "sum", **settings}
        settings.update({k.lower(): v for k, v in run_settings.items()})
        settings.update({"nevents": int(job.n_events), "iseed": int(job.seed)})
        run_text = set_run_card((procdir / "Cards" / "run_card.dat").read_text(), settings)

        run_name = "run_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{job.sample}_{job.job_index}")
        log_path = output.with_name(output.name + ".log")
        work = (
            Path(opts.get("work_dir") or output.parent).absolute()
            / f".{output.name}.mg-{uuid.uuid4().hex[:8]}"
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        ok = False
        try:
            shutil.copytree(procdir, work, symlinks=True)
            cards = work / "Cards"
            (cards / "run_card.dat").write_text(run_text)
            (cards / "param_card.dat").write_text(param_text)
            (cards / "reweight_card.dat").write_text(rw_text)
            self._configure_cores(cards, opts.get("nb_core"))
            for stale in ("MG5_debug", "ME5_debug"):
                remove_path(work / stale)
            cmd = [str(work / "bin" / "generate_events"), run_name, "-f"]
            log.info(
                "madgraph: %d events of %s (%s) at %s, iseed %d, in %s",
                job.n_events,
                job.sample,
                " ; ".join(process_lines(opts["process"])),
                s_name,
                job.seed,
                work,
            )
            self._run(cmd, work, log_path, opts, what="generate_events")
            lhe = work / "Events" / run_name / "unweighted_events.lhe.gz"
            self._check(log_path, work, lhe, run_name, systematics=bool(syst_args))
            result = self._finish(
                job,
                lhe,
                output,
                log_path,
                bench_names,
                opts,
                provenance={
                    "generator": "madgraph",
                    "generator_version": version,
                    "mg_dir": str(mg_dir),
                    "model": opts["model"],
                    "process": process_lines(opts["process"]),
                    "process_hash": proc_hash,
                    "seed": int(job.seed),
                    "iseed": int(job.seed),
                    "sample": job.sample,
                    "job_index": int(job.job_index),
                    "sampling_benchmark": s_name,
                    "run_name": run_name,
                    "change_helicity": bool(opts.get("change_helicity")),
                    "systematics_arguments": syst_args or None,
                    "run_card_settings": {k: settings[k] for k in sorted(settings)},
                    "cards_sha256": {
                        "proc_card_mg5.dat": _sha256(proc_text),
                        "run_card.dat": _sha256(run_text),
                        "param_card.dat": _sha256(param_text),
                        "reweight_card.dat": _sha256(rw_text),
                    },
                },
            )
            ok = True
            return result
        finally:
            if ok or not opts.get("keep_workdir"):
                remove_path(work)
            elif work.exists():
                log.warning("madgraph: work directory kept for inspection: %s", work)

    # --- the cached process directory ------------------------------------------------------
    def _process_dir(self, mg_dir: Path, version: str, opts: dict) -> tuple[Path, str, str]:
        """The cached ``output`` for (install, version, model, process), made once under a lock."""
        model = str(opts.get("model") or "sm")
        lines = process_lines(opts.get("process"))
        key = json.dumps(
            {"mg_dir": str(mg_dir), "version": version, "model": model, "process": lines},
            sort_keys=True,
        )
        h = _sha256(key)[:16]
        slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{model}_{lines[0].split(None, 1)[-1]}")[:40]
        cache = Path(opts.get("cache_dir") or default_cache_dir()).expanduser().resolve()
        entry = cache / f"{slug.strip('_')}-{h}"
        procdir = entry / "proc"
        marker = entry / "complete.json"
        text = proc_card(model, lines, procdir.name)  # run in `entry`: no absolute path
        with _file_lock(cache / f".{entry.name}.lock"):
            if marker.is_file() and procdir.is_dir():
                log.info("madgraph: using the cached process directory %s", procdir)
                return procdir, text, h
            remove_path(procdir)
            entry.mkdir(parents=True, exist_ok=True)
            remove_path(entry / "MG5_debug")
            card = entry / "proc_card_mg5.dat"
            card.write_text(text)
            log_path = entry / "output.log"
            log.info(
                "madgraph: mg5_aMC output of %s (%s) into %s", model, "; ".join(lines), procdir
            )
            self._run(
                [str(mg_dir / "bin" / "mg5_aMC"), str(card)], entry, log_path, opts, what="output"
            )
            failed, quote = scan_log(log_path.read_text(errors="replace"))
            debug = entry / "MG5_debug"
            if failed or debug.exists() or not (procdir / "bin" / "generate_events").is_file():
                remove_path(procdir)
                reason = (
                    "MadGraph reported an error"
                    if failed
                    else (
                        f"MadGraph wrote {debug.name}"
                        if debug.exists()
                        else "no process directory was made"
                    )
                )
                raise BackendError(
                    f"mg5_aMC 'output' failed ({reason}; it exits 0 on errors). Log lines:\n  "
                    + "\n  ".join(quote)
                    + f"\nfull log: {log_path}",
                    file=log_path,
                    field="output",
                )
            marker.write_text(json.dumps({"key": json.loads(key), "proc_card": text}, indent=1))
            return procdir, text, h

    # --- running and checking --------------------------------------------------------------
    @staticmethod
    def _configure_cores(cards: Path, nb_core) -> None:
        if nb_core is None:
            return
        n = int(nb_core)
        if n < 1:
            raise ConfigError("nb_core must be ≥ 1", field=f"{_FIELD}.nb_core")
        conf = cards / "me5_configuration.txt"
        text = conf.read_text() if conf.is_file() else ""
        for name, value in (("run_mode", 2), ("nb_core", n)):
            pat = re.compile(rf"^\s*#?\s*{name}\s*=.*$", re.M)
            line = f" {name} = {value}"
            text = pat.sub(line, text, count=1) if pat.search(text) else text + line + "\n"
        conf.write_text(text)

    @staticmethod
    def _run(cmd: list[str], cwd: Path, log_path: Path, opts: dict, *, what: str) -> None:
        """Run ``cmd`` with stdin /dev/null, stdout+stderr into ``log_path``; kill it on timeout."""
        if opts.get("python"):
            cmd = [str(opts["python"]), *cmd]
        timeout = opts.get("timeout")
        timeout = None if timeout in (None, 0) else float(timeout)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as fh:
            fh.write(f"# eftflow: {' '.join(cmd)} (cwd {cwd})\n".encode())
            fh.flush()
            try:
                proc = subprocess.Popen(
                    cmd,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as err:
                raise BackendError(
                    f"cannot start MadGraph ({err.strerror})", file=cmd[0], field=what
                ) from None
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                _, quote = scan_log(log_path.read_text(errors="replace"))
                raise BackendError(
                    f"MadGraph {what} did not finish within {timeout:g} s and was stopped. "
                    "Last log lines:\n  " + "\n  ".join(quote) + f"\nfull log: {log_path}",
                    file=log_path,
                    field=f"{_FIELD}.timeout",
                ) from None
        if proc.returncode != 0:
            _, quote = scan_log(log_path.read_text(errors="replace"))
            raise BackendError(
                f"MadGraph {what} exited with code {proc.returncode}. Log lines:\n  "
                + "\n  ".join(quote)
                + f"\nfull log: {log_path}",
                file=log_path,
                field=what,
            )

    @staticmethod
    def _systematics_settings(setup, opts: dict) -> tuple[dict, str]:
        """Run-card systematics settings from the setup's scale/PDF systematics (as MadMiner).

        ``use_syst`` None (the default) switches MadGraph's systematics module on exactly when
        the setup declares ``scale`` or ``pdf`` systematics; ``systematics_arguments`` lists
        their variations (the scale variations become nuisance weights downstream,
        :mod:`eftflow.generate.systematics`). ``use_syst: false`` with such systematics is
        logged: the shower then finds no weights for the scale systematics and says so.
        """
        systs = [s for s in setup.systematics.values() if s.type in ("scale", "pdf")]
        args = systematics_arguments(systs)
        use = opts.get("use_syst")
        use = bool(args) if use is None else bool(use)
        if not use:
            if args:
                log.warning(
                    "madgraph: use_syst is false, so MadGraph makes no weights for the scale/PDF "
                    "systematics %s of the setup",
                    ", ".join(s.name for s in systs),
                )
            return {"use_syst": False}, ""
        settings: dict = {"use_syst": True}
        if args:
            settings.update({"systematics_program": "systematics", "systematics_arguments": args})
        return settings, args

    @staticmethod
    def _check(
        log_path: Path, work: Path, lhe: Path, run_name: str, *, systematics: bool = False
    ) -> None:
        """Raise if the log, a debug file or a missing LHE file says that the run failed.

        MadEvent writes its debug file as ``<run>_<tag>_debug.log`` in the process directory
        (``ME5_debug`` when no run is open). With ``systematics`` (the setup's scale/PDF
        variations were asked for) a log saying that the systematics module was skipped (no
        LHAPDF) is a failure too: the run would otherwise lack those weights silently.
        """
        text = log_path.read_text(errors="replace")
        failed, quote = scan_log(text)
        debug = [p for p in (work / "ME5_debug", work / "MG5_debug") if p.exists()]
        debug += sorted(work.glob(f"{run_name}_*debug.log"))
        debug += sorted((work / "Events" / run_name).glob("*_debug.log"))
        problems = []
        if failed:
            problems.append("MadGraph reported an error")
        if systematics and (m := SYSTEMATICS_SKIPPED.search(text)):
            line = text[text.rfind("\n", 0, m.start()) + 1 :].split("\n", 1)[0]
            problems.append(
                "the scale/PDF systematics of the setup were asked for but MadGraph skipped its "
                "systematics module (it needs LHAPDF; set use_syst: false to run without them)"
            )
            quote = [*quote, line.strip()]
        if debug:
            problems.append(f"it wrote {', '.join(p.name for p in debug)}")
        if not lhe.is_file() or lhe.stat().st_size == 0:
            problems.append(f"no Events/{run_name}/{lhe.name} was written")
        if not problems:
            return
        tail = []
        for p in debug[:1]:
            lines = [ln for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
            tail = [f"{p.name}: {ln}" for ln in lines[-2:]]
        raise BackendError(
            f"MadGraph generate_events failed ({'; '.join(problems)}; it exits 0 on errors). "
            "Log lines:\n  " + "\n  ".join(quote + tail) + f"\nfull log: {log_path}",
            file=log_path,
            field="generate_events",
        )

    @staticmethod
    def _finish(job, lhe, output, log_path, bench_names, opts, *, provenance) -> GenerationResult:
        """Check the LHE file, move it to the output, write the provenance sidecar."""
        from eftflow import __version__
        from eftflow.generate.lhe import LHEReader

        try:
            reader = LHEReader(
                lhe, benchmarks=bench_names, negative_weights=opts.get("negative_weights", "error")
            )
            totals = np.zeros(len(bench_names))
            sq = np.zeros(len(bench_names))
            n = 0
            for chunk in reader.iter_chunks():
                w = reader.benchmark_weights(chunk)
                totals += w.sum(axis=0)
                sq += (w * w).sum(axis=0)
                n += chunk.n_events
            init = reader.header.init
        except InputError as err:
            raise BackendError(
                f"MadGraph's event file is not usable: {err}\nfull log: {log_path}",
                file=log_path,
                field="generate_events",
            ) from None
        if n == 0:
            raise BackendError(
                f"MadGraph wrote no events\nfull log: {log_path}",
                file=log_path,
                field="generate_events",
            )
        if n != job.n_events:
            log.warning("madgraph: %d events requested, MadGraph wrote %d", job.n_events, n)
        # statistical spread of the weights plus MadGraph's integration error, scaled per benchmark
        rel_int = 0.0
        if init.cross_section > 0:
            err2 = sum(p.error**2 for p in init.processes)
            rel_int = float(np.sqrt(err2)) / init.cross_section
        errs = np.sqrt(np.maximum(sq - totals**2 / n, 0.0) + (totals * rel_int) ** 2)
        xs = dict(zip(bench_names, totals.tolist()))
        xerr = dict(zip(bench_names, errs.tolist()))
        sidecar = output.with_name(output.name + ".json")
        meta = {
            **provenance,
            "n_events": n,
            "n_events_requested": int(job.n_events),
            "cross_sections": xs,
            "cross_section_errors": xerr,
            "weight_ids": bench_names,
            "event_norm": reader.event_norm,
            "log": str(log_path),
            "eftflow_version": __version__,
            **(job.provenance or {}),
        }
        with atomic_path(output) as tmp:
            shutil.move(str(lhe), str(tmp))
        try:
            with atomic_path(sidecar) as tmp:
                tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        except BaseException:
            remove_path(output)
            raise
        log.info("madgraph: %d events -> %s; σ (pb): %s", n, output, json.dumps(xs))
        return GenerationResult(
            output=output,
            n_events=n,
            cross_sections=xs,
            cross_section_errors=xerr,
            metadata=meta,
        )
