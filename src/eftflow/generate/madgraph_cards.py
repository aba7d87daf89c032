"""MadGraph5_aMC@NLO cards and logs for the ``madgraph`` backend: pure text functions, no I/O.

* the install (``VERSION`` file, supported lines 3.5.x and 3.6.x),
* the proc card (``import model``, ``generate``/``add process``, ``output``),
* the run card (``value = name ! comment`` lines; values replaced in place, unknown names
  appended),
* the param card (SLHA; ``BLOCK name`` entries ``id value # comment`` and ``DECAY id value``
  lines; values replaced in place, keeping MadGraph's layout),
* the reweight card (``change helicity False``, ``change mode LO``, one ``launch
  --rwgt_name=<benchmark>`` per benchmark with one ``set <block> <id> <value>`` per parameter),
* the log scan: MadGraph exits 0 on errors, so failure is read from ``Command "..." interrupted``
  and error lines.

Example
-------
>>> print(reweight_card([("sm", [("dim6", 2, 0.0)]), ("c1", [("dim6", 2, 1.0)])]), end="")
change helicity False
change mode LO
launch --rwgt_name=sm
    set dim6 2 0.0
launch --rwgt_name=c1
    set dim6 2 1.0
>>> set_run_card("  10000 = nevents ! Number of events\\n", {"nevents": 500, "iseed": 3})
'  500 = nevents ! Number of events\\n 3 = iseed ! set by eftflow\\n'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from eftflow.errors import BackendError, ConfigError

__all__ = [
    "SUPPORTED_VERSIONS",
    "read_mg_version",
    "process_lines",
    "proc_card",
    "card_value_text",
    "set_run_card",
    "param_card_entries",
    "set_param_card",
    "reweight_card",
    "scan_log",
    "systematics_arguments",
    "format_param_value",
    "SYSTEMATICS_SKIPPED",
]

#: MadGraph release lines the backend accepts (same card formats)
SUPPORTED_VERSIONS = ("3.5", "3.6")

_VERSION = re.compile(r"^\s*version\s*=\s*(\S+)", re.M)
_INTERRUPTED = re.compile(r'Command ".*" interrupted|^\s*Error detected in "')
_ERROR_HEAD = re.compile(
    r"^\s*(?:[A-Za-z_]\w*Error|[A-Za-z_]\w*Exception|Error|ERROR|InvalidCmd|Invalid\w*|ZeroResult)"
    r"\s*:"
)
#: MadGraph skipped its systematics module (no LHAPDF): the run "succeeds" without the weights
SYSTEMATICS_SKIPPED = re.compile(r"Can not run systematics computation|No version of lhapdf", re.I)
_ERROR_WORD = re.compile(r"error", re.I)
_BENIGN = re.compile(r"stty:|Please report this bug|Please attach this file", re.I)


def read_mg_version(mg_dir: str | Path) -> str:
    """The version of the MG5_aMC install at ``mg_dir`` (from its ``VERSION`` file).

    Raises :class:`~eftflow.errors.BackendError` naming the path if there is no install there
    (no ``bin/mg5_aMC`` or ``VERSION``) or the version is not a supported 3.5.x / 3.6.x.
    """
    mg_dir = Path(mg_dir)
    if not mg_dir.is_dir():
        raise BackendError(
            "no MadGraph5_aMC@NLO install here (directory does not exist); set "
            "generation.madgraph.mg_dir or MG5_HOME to the MG5_aMC directory",
            file=mg_dir,
        )
    exe = mg_dir / "bin" / "mg5_aMC"
    if not exe.is_file():
        raise BackendError(
            "not a MadGraph5_aMC@NLO install: bin/mg5_aMC is missing", file=mg_dir, field="bin"
        )
    vfile = mg_dir / "VERSION"
    if not vfile.is_file():
        raise BackendError("not a MadGraph5_aMC@NLO install: no VERSION file", file=vfile)
    m = _VERSION.search(vfile.read_text(errors="replace"))
    if m is None:
        raise BackendError(
            "no 'version = X.Y.Z' line in the VERSION file", file=vfile, field="version"
        )
    version = m.group(1)
    if not any(version == v or version.startswith(v + ".") for v in SUPPORTED_VERSIONS):
        raise BackendError(
            f"MadGraph5_aMC@NLO {version} is not supported; supported: "
            + ", ".join(f"{v}.x" for v in SUPPORTED_VERSIONS),
            file=vfile,
            field="version",
        )
    return version


def process_lines(process: str | Sequence[str]) -> list[str]:
    """Process definitions → proc-card lines: the first ``generate``, the others ``add process``.

    Lines that already start with ``generate``, ``add process`` or ``define`` are kept as they are.
    """
    items = [process] if isinstance(process, str) else list(process or [])
    for p in items:
        if any(c in str(p) for c in "\n\r;"):
            raise ConfigError(
                f"process line {str(p)!r} contains a forbidden character (newline or ';')",
                field="generation.madgraph.process",
            )
    items = [" ".join(str(p).split()) for p in items if str(p).strip()]
    if not items:
        raise ConfigError(
            "no process given (e.g. 'e+ e- > mu+ mu-')", field="generation.madgraph.process"
        )
    out: list[str] = []
    n_proc = 0
    for p in items:
        if p.startswith(("generate ", "add process ", "define ")):
            out.append(p)
            n_proc += not p.startswith("define ")
            continue
        out.append(("generate " if n_proc == 0 else "add process ") + p)
        n_proc += 1
    return out


def proc_card(model: str, process: str | Sequence[str], output: str | Path) -> str:
    """The proc card: ``import model``, the process lines, ``output <dir>``."""
    if not model or any(c.isspace() for c in str(model)):
        raise ConfigError(
            f"model must be one word (a UFO name or path), got {model!r}",
            field="generation.madgraph.model",
        )
    lines = [f"import model {model}", *process_lines(process), f"output {output}"]
    return "\n".join(lines) + "\n"


def card_value_text(value) -> str:
    """A value as MadGraph cards want it: ``True``/``False``, numbers as Python writes them."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def set_run_card(text: str, settings: dict) -> str:
    """Set run-card entries ``name -> value`` (in place where the name exists, else appended)."""
    lines = text.splitlines(keepends=True)
    done = set()
    pat = re.compile(r"^(\s*)(.*?)(\s*=\s*)([A-Za-z_]\w*)(\s*(?:!.*)?)$", re.S)
    for i, line in enumerate(lines):
        body = line.rstrip("\n")
        if body.lstrip().startswith("#"):
            continue
        m = pat.match(body)
        if m is None:
            continue
        name = m.group(4).lower()
        if name in settings and name not in done:
            lines[i] = (
                f"{m.group(1)}{card_value_text(settings[name])}{m.group(3)}{m.group(4)}"
                f"{m.group(5)}" + ("\n" if line.endswith("\n") else "")
            )
            done.add(name)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for name, value in settings.items():
        if name.lower() not in done:
            lines.append(f" {card_value_text(value)} = {name} ! set by eftflow\n")
    return "".join(lines)


_BLOCK = re.compile(r"^\s*block\s+(\S+)", re.I)
_DECAY = re.compile(r"^(\s*decay\s+)([+-]?\d+)(\s+)(\S+)(.*)$", re.I | re.S)
_ENTRY = re.compile(r"^(\s*)([+-]?\d+)(\s+)(\S+)(.*)$", re.S)


def _scan_param_card(text: str):
    """Yield (line index, block, id, regex match) for every single-index entry."""
    block = None
    for i, line in enumerate(text.splitlines(keepends=True)):
        body = line.split("#", 1)[0]
        if not body.strip():
            continue
        if m := _BLOCK.match(body):
            block = m.group(1).lower()
            continue
        if m := _DECAY.match(line.rstrip("\n")):
            block = None
            yield i, "decay", int(m.group(2)), m
            continue
        if block is not None and len(body.split()) == 2 and (m := _ENTRY.match(line.rstrip("\n"))):
            yield i, block, int(m.group(2)), m


def param_card_entries(text: str) -> dict[tuple[str, int], str]:
    """``{(block lower-case, id): value text}`` of every single-index entry and DECAY line."""
    return {(b, i): m.group(4) for _, b, i, m in _scan_param_card(text)}


def format_param_value(value: float) -> str:
    """A param-card value in MadGraph's ``%e`` layout, with as many digits as the value needs.

    ``1.200000e+02`` for 120, but ``2.03950615631196e+00`` (not ``2.039506e+00``) for a value
    that six decimals would round: the card must hold the benchmark exactly, as the reweight card
    does (MadMiner writes the full ``repr`` too).
    """
    value = float(value)
    for digits in range(6, 17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            return text
    return f"{value:.16e}"


def set_param_card(
    text: str,
    values: dict[tuple[str, int], float],
    *,
    names: dict[tuple[str, int], str] | None = None,
    path: str | Path | None = None,
) -> str:
    """Set param-card entries ``(block, id) -> value`` in place (:func:`format_param_value`).

    ``names`` maps each entry to the parameter it belongs to, for the error message: an entry
    missing from the card is a :class:`~eftflow.errors.ConfigError` naming the parameter and
    block/id.
    """
    lines = text.splitlines(keepends=True)
    want = {(str(b).lower(), int(i)): float(v) for (b, i), v in values.items()}
    found = set()
    for idx, block, pid, m in _scan_param_card(text):
        key = (block, pid)
        if key not in want or key in found:
            continue
        end = "\n" if lines[idx].endswith("\n") else ""
        value = format_param_value(want[key])
        lines[idx] = f"{m.group(1)}{m.group(2)}{m.group(3)}{value}{m.group(5)}{end}"
        found.add(key)
    missing = [k for k in want if k not in found]
    if missing:
        block, pid = missing[0]
        who = (names or {}).get(missing[0])
        what = f"parameter {who!r}" if who else "entry"
        where = f"DECAY {pid}" if block == "decay" else f"BLOCK {block.upper()} entry {pid}"
        raise ConfigError(
            f"{what} has no LHA entry in the param card: no {where} (lha_block {block!r}, "
            f"lha_id {pid}); check the parameter's lha_block/lha_id against the model",
            file=path,
            field=f"parameters.{who}.lha_block" if who else f"{block} {pid}",
        )
    return "".join(lines)


def reweight_card(
    benchmarks: Iterable[tuple[str, Sequence[tuple[str, int, float]]]],
    *,
    change_helicity: bool = False,
    mode: str | None = "LO",
) -> str:
    """The reweight card: one ``launch --rwgt_name=<name>`` per benchmark, every value ``set``.

    ``change_helicity=False`` (the default) puts ``change helicity False`` first: helicity-summed
    weights (MadGraph's default uses the event's helicities; see the MadGraph notes, gotcha 1).
    ``mode`` gives ``change mode <mode>`` (``None`` leaves MadGraph's default).
    """
    out = []
    if not change_helicity:
        out.append("change helicity False")
    if mode:
        out.append(f"change mode {mode}")
    for name, sets in benchmarks:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
            raise ConfigError(
                f"benchmark name {name!r} cannot be a MadGraph weight id (use letters, digits, _ . + -)",
                field="benchmarks",
            )
        out.append(f"launch --rwgt_name={name}")
        out += [f"    set {block} {pid} {card_value_text(float(v))}" for block, pid, v in sets]
    return "\n".join(out) + "\n"


def scan_log(text: str, *, n_lines: int = 10) -> tuple[bool, list[str]]:
    """(failed, the last ``n_lines`` relevant lines) of a MadGraph log.

    Failed: a ``Command "..." interrupted`` line, or a line starting with an error tag
    (``KeyError :``, ``InvalidCmd :``, ``Error:`` ...). Relevant: those lines, the line after an
    ``interrupted`` line, and lines mentioning "error"; if none, the last lines of the log.
    """
    lines = [ln.rstrip() for ln in text.splitlines()]
    failed = False
    keep: list[int] = []
    for i, line in enumerate(lines):
        if _BENIGN.search(line):
            continue
        if _INTERRUPTED.search(line):
            failed = True
            keep += [i, i + 1]
        elif _ERROR_HEAD.match(line):
            failed = True
            keep.append(i)
        elif _ERROR_WORD.search(line):
            keep.append(i)
    idx = sorted({i for i in keep if i < len(lines) and lines[i].strip()})
    rel = [lines[i] for i in idx]
    if not rel:
        rel = [ln for ln in lines if ln.strip()]
    return failed, rel[-n_lines:]


def systematics_arguments(systematics: Iterable) -> str:
    """The run card's ``systematics_arguments`` for the setup's scale/PDF systematics.

    The same list as MadMiner's ``create_systematics_arguments``: a ``mu`` scale systematic gives
    ``'--mur=<v>', '--muf=<v>', '--together=mur,muf', '--dyn=-1'``; ``mur``/``muf`` alone give
    ``'--mur=<v>'``/``'--muf=<v>'`` and ``'--dyn=-1'``; ``pdf`` gives ``'--pdf=<set>'``. ``norm``
    systematics need no MadGraph weights and are skipped. Returns ``""`` when there is nothing
    to vary. Two systematics varying the same scale (or two PDF systematics) are a
    :class:`~eftflow.errors.ConfigError`.

    ``systematics`` holds objects with ``name``, ``type``, ``value`` and ``scale`` attributes
    (:class:`~eftflow.physics.parameters.Systematic`).
    """
    args: list[str] = []
    done: dict[str, str] = {}

    def claim(what: str, name: str) -> None:
        if what in done:
            raise ConfigError(
                f"systematics {done[what]!r} and {name!r} both vary {what}: MadGraph's "
                "systematics module takes one variation per scale and one PDF set",
                field=f"systematics.{name}",
            )
        done[what] = name

    for s in systematics:
        if s.type == "scale":
            value = str(s.value).replace(" ", "")
            if s.scale == "mu":
                claim("mur", s.name)
                claim("muf", s.name)
                args += [f"'--mur={value}'", f"'--muf={value}'", "'--together=mur,muf'"]
            else:
                claim(s.scale, s.name)
                args.append(f"'--{s.scale}={value}'")
            args.append("'--dyn=-1'")
        elif s.type == "pdf":
            claim("pdf", s.name)
            args.append(f"'--pdf={s.value}'")
    return f"[{', '.join(args)}]" if args else ""
