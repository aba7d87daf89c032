"""A fake MG5_aMC for tests: MadGraph's layout, log messages and LHE format, no physics code.

It understands the proc-card commands ``import model``, ``define``, ``set``, ``generate``,
``add process`` and ``output``, and a process directory's ``bin/generate_events <run> -f``
(run card, param card, reweight card). The only process is ``e+ e- > mu+ mu-`` (any ``NP<=n``
suffix), with an analytic |M|² that is quadratic in the model's EFT coefficients (see the
model's ``fake_me.json``)::

    |M|²(x) ∝ (1 + x²) A² + (1 + x)² B²,  A = 1 + Σ_i c_i (a_i + b_i x),  B = Σ_i c_i d_i

with x = cos θ of the μ⁺ against the e⁺ beam and σ₀ = 4πα²/(3s) (α = 1/aEWM1 of the card).
Events are unweighted by rejection with ``random.Random(iseed)``, so the same cards give a
byte-identical file. Reweighting multiplies XWGTUP by |M|²_new/|M|²_orig at the event's x, as
MadGraph does.

Failures behave like MadGraph's: the log says ``Command "..." interrupted with error:``, a debug
file appears, and the exit code is 0. ``FAKE_MG5_WEIGHT_DIGITS`` (environment) writes the
``<wgt>`` values with more digits than MadGraph's 8 (for closure tests at 1e-10);
``FAKE_MG5_SLEEP`` makes ``generate_events`` hang for that many seconds (timeout tests).

Systematics module (run card ``use_syst = True``): as MadGraph without LHAPDF, the fake logs
``No version of lhapdf. Can not run systematics computation`` and writes no variation weights.
With ``FAKE_MG5_LHAPDF=1`` it writes them as MadGraph 3.5's ``systematics`` program does:
a ``Central scale variation`` group with every (MUR, MUF) pair of ``--mur``/``--muf`` of
``systematics_arguments`` except (1, 1), ids 1, 2, … with ``MUR``, ``MUF`` and ``PDF``
attributes, then the central PDF member as a group of its own, ahead of the reweighting group;
the values are XWGTUP × (1 + 0.1 ln(MUR) x + 0.05 ln(MUF)) (a smooth stand-in: e+e- → μμ has no
PDFs or α_s to vary). A ``--pdf=<set>`` argument writes that set's group instead of the central
member alone: ``combine`` = ``FAKE_MG5_PDF_COMBINE`` (default ``hessian``), members 0 …
``FAKE_MG5_PDF_MEMBERS`` − 1 (default 9) with ``PDF`` = the set's id + k and the values
XWGTUP × (1 + 0.02 (−1)^k ⌈k/2⌉ x).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

__all__ = ["mg5_main", "generate_events_main"]

HERE = Path(__file__).resolve().parent
GEV2_TO_PB = 0.3893793721e9
GL3 = ((-math.sqrt(0.6), 5.0 / 9.0), (0.0, 8.0 / 9.0), (math.sqrt(0.6), 5.0 / 9.0))


class FakeError(Exception):
    """A MadGraph-style error: ``kind`` is the exception name MadGraph prints."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def mg_version() -> str:
    text = (HERE / "VERSION").read_text()
    return re.search(r"version\s*=\s*(\S+)", text).group(1)


def mg_date() -> str:
    m = re.search(r"date\s*=\s*(\S+)", (HERE / "VERSION").read_text())
    return m.group(1) if m else "2024-11-29"


def _record(line: str) -> None:
    with open(HERE / ".fake_calls", "a") as fh:
        fh.write(line + "\n")


def banner(title: str = "") -> str:
    v, d = mg_version(), mg_date()
    lines = [
        "************************************************************",
        "*                                                          *",
        "*                     W E L C O M E to                     *",
        "*              M A D G R A P H 5 _ a M C @ N L O           *",
    ]
    if title:
        lines.append(f"*{title:^58s}*")
    lines += [
        "*                                                          *",
        "*                 *                       *                *",
        "*                   *        * *        *                  *",
        "*                     * * * * 5 * * * *                    *",
        "*                   *        * *        *                  *",
        "*                 *                       *                *",
        "*                                                          *",
        f"*         VERSION {v:<15s}{d:>16s}         *",
        "*                                                          *",
        "*    The MadGraph5_aMC@NLO Development Team - Find us at   *",
        "*    https://server06.fynu.ucl.ac.be/projects/madgraph     *",
        "*                            and                           *",
        "*            http://amcatnlo.web.cern.ch/amcatnlo/         *",
        "*                                                          *",
        "************************************************************",
    ]
    return "\n".join(lines)


def fail(command: str, err: FakeError, debug_file: Path) -> None:
    """Print MadGraph's failure block, write the debug file; the caller then exits 0."""
    print(f'Command "{command}" interrupted with error:')
    print(f"{err.kind} : {err}")
    print("Please report this bug on https://bugs.launchpad.net/mg5amcnlo")
    print(f"More information is found in '{debug_file}'.")
    print("Please attach this file to your report.")
    debug_file.write_text(
        f"#{command}\nTraceback (most recent call last):\n"
        f'  File "madgraph/interface/extended_cmd.py", line 1541, in onecmd\n'
        f"    return self.onecmd_orig(line, **opt)\n{err.kind}: {err}\n"
    )


# --- models and cards ---------------------------------------------------------------------------
def find_model(name: str) -> Path:
    base = name.split("-", 1)[0] if not os.path.isabs(name) else name
    path = Path(base) if os.path.isabs(base) else HERE / "models" / base
    if not (path / "fake_me.json").is_file():
        raise FakeError(
            "MadGraph5Error",
            f"{name} : Model not found locally and Impossible to connect any of us servers. "
            "Please check your internet connection or retry later",
        )
    return path


def parse_param_card(text: str) -> dict[tuple[str, int], float]:
    """SLHA → {(block lower-case, id): value}; DECAY lines as block ``decay``."""
    values: dict[tuple[str, int], float] = {}
    block = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        head = words[0].lower()
        try:
            if head == "block":
                block = words[1].lower()
            elif head == "decay":
                values[("decay", int(words[1]))] = float(words[2])
                block = None
            elif block is not None and len(words) == 2:
                values[(block, int(words[0]))] = float(words[1])
            elif block is not None and len(words) > 2:
                continue  # matrix entries: not used by the fake
            else:
                raise ValueError(line)
        except (ValueError, IndexError):
            raise FakeError(
                "InvalidParamCard", f"param_card.dat line {n} is not valid SLHA: {raw.strip()!r}"
            ) from None
    return values


def parse_run_card(text: str) -> dict[str, str]:
    out = {}
    for raw in text.splitlines():
        line = raw.split("!", 1)[0].strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        value, name = (s.strip() for s in line.rsplit("=", 1))
        out[name.lower()] = value
    return out


class Model:
    def __init__(self, path: Path):
        spec = json.loads((path / "fake_me.json").read_text())
        self.coefficients = spec.get("coefficients", [])
        self.default_card = (path / "param_card.dat").read_text()

    def amp2(self, x: float, card: dict, s: float) -> float:
        """dσ/dcosθ in pb at cos θ = x."""
        alpha = 1.0 / card[("sminputs", 1)]
        sigma0 = 4.0 * math.pi * alpha**2 / (3.0 * s) * GEV2_TO_PB
        a, b = 1.0, 0.0
        for c in self.coefficients:
            v = card.get((c["block"].lower(), int(c["id"])), 0.0)
            a += v * (c["a"] + c["b"] * x)
            b += v * c["d"]
        return 0.375 * sigma0 * ((1.0 + x * x) * a * a + (1.0 + x) ** 2 * b * b)

    def sigma(self, card: dict, s: float) -> float:
        return sum(w * self.amp2(x, card, s) for x, w in GL3)

    def bound(self, card: dict, s: float) -> float:
        # a degree-4 polynomial sampled on a fine grid, with a safety factor
        return max(self.amp2(i / 100.0 - 1.0, card, s) for i in range(201)) * 1.5


# --- mg5_aMC --------------------------------------------------------------------------------------
PROCESS = re.compile(r"^e\+\s+e-\s*>\s*mu\+\s+mu-(\s+\w+\s*[<=>]+\s*\d+)*\s*$")


def mg5_main(argv: list[str]) -> int:
    print(banner())
    print(f"INFO: load configuration from {HERE}/input/mg5_configuration.txt")
    print("INFO: None does not seem to correspond to a valid fastjet-config executable")
    if not argv:
        print("fake mg5_aMC: interactive mode is not simulated")
        return 0
    cmd_file = Path(argv[0])
    print(f"INFO: Reading commands from {cmd_file}")
    lines = cmd_file.read_text().splitlines()
    model_path = None
    model_name = None
    processes: list[str] = []
    history: list[str] = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        print(f"MG5_aMC>{line}")
        history.append(line)
        words = line.split()
        try:
            if words[0] == "import" and len(words) >= 3 and words[1] == "model":
                model_name = words[2]
                model_path = find_model(model_name)
                print(
                    f"INFO: load particles\nINFO: load vertices\nINFO: Restrict model {model_name}"
                )
            elif words[0] in ("define", "set"):
                continue
            elif words[0] == "generate" or line.startswith("add process"):
                proc = line.split(None, 2 if words[0] == "add" else 1)[-1]
                if model_path is None:
                    model_path = find_model("sm")
                    model_name = "sm"
                if not PROCESS.match(proc):
                    raise FakeError(
                        "InvalidCmd",
                        f"the fake mg5_aMC only simulates 'e+ e- > mu+ mu-', not {proc!r}",
                    )
                processes.append(proc)
                print("INFO: Checking for minimal orders which gives processes.")
                print("INFO: Trying process: e+ e- > mu+ mu- WEIGHTED<=4 @1  ")
                print("INFO: Process has 2 diagrams ")
                print("1 processes with 2 diagrams generated in 0.004 s ")
                print("Total: 1 processes with 2 diagrams ")
            elif words[0] == "output":
                if not processes:
                    raise FakeError(
                        "InvalidCmd", "No process generated! Please create process first."
                    )
                target = Path(words[1]) if len(words) > 1 and not words[1].startswith("-") else None
                if target is None:
                    raise FakeError("InvalidCmd", "the fake mg5_aMC needs an output directory")
                _output(target, model_path, model_name, processes, history)
                _record(f"output {target}")
            elif words[0] in ("exit", "quit"):
                break
            else:
                raise FakeError("InvalidCmd", f"the fake mg5_aMC does not simulate {words[0]!r}")
        except FakeError as err:
            fail(line, err, Path.cwd() / "MG5_debug")
            break
    print("quit")
    return 0


GENERATE_EVENTS = """#! {python}
import sys
sys.path.insert(0, {mg!r})
from fake_core import generate_events_main
sys.exit(generate_events_main(sys.argv[1:]))
"""

RUN_CARD = """#*********************************************************************
#                       MadGraph5_aMC@NLO                            *
#                                                                    *
#                     run_card.dat MadEvent                          *
#                                                                    *
#  This file is used to set the parameters of the run.               *
#                                                                    *
#  Some notation/conventions:                                        *
#                                                                    *
#   Lines starting with a '# ' are info or comments                  *
#                                                                    *
#   mind the format:   value    = variable     ! comment             *
#                                                                    *
#   To display more options, you can type the command:               *
#      update to_full                                                *
#*********************************************************************
#
#*********************************************************************
# Tag name for the run (one word)                                    *
#*********************************************************************
  tag_1     = run_tag ! name of the run
#*********************************************************************
# Number of events and rnd seed                                      *
# Warning: Do not generate more than 1M events in a single run       *
#*********************************************************************
  10000 = nevents ! Number of unweighted events requested
  0   = iseed   ! rnd seed (0=assigned automatically=default))
#*********************************************************************
# Collider type and energy                                           *
# lpp: 0=No PDF, 1=proton, -1=antiproton,                            *
#                2=elastic photon of proton/ion beam                 *
#             +/-3=PDF of electron/positron beam                     *
#             +/-4=PDF of muon/antimuon beam                         *
#*********************************************************************
     0        = lpp1    ! beam 1 type
     0        = lpp2    ! beam 2 type
     500.0     = ebeam1  ! beam 1 total energy in GeV
     500.0     = ebeam2  ! beam 2 total energy in GeV
#*********************************************************************
# Normalize the weights of LHE events such that they sum or average to the total cross section
#*********************************************************************
  average =  event_norm       ! average/sum. Normalization of the weight in the LHEF
#*********************************************************************
# Store info for systematics studies                                 *
#*********************************************************************
   False  = use_syst      ! Enable systematics studies
"""

ME5_CONFIGURATION = """#*********************************************************************
#                       MadGraph/MadEvent                            *
#*********************************************************************
 run_mode = 2
 nb_core = None
"""


def _output(target, model_path, model_name, processes, history) -> None:
    print(f"INFO: initialize a new directory: {target.name} ")
    model = Model(model_path)
    for sub in ("bin", "Cards", "Events", "SubProcesses", "Source"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    proc_card = "\n".join(history) + "\n"
    cards = target / "Cards"
    (cards / "proc_card_mg5.dat").write_text(proc_card)
    (cards / "param_card.dat").write_text(model.default_card)
    (cards / "param_card_default.dat").write_text(model.default_card)
    (cards / "run_card.dat").write_text(RUN_CARD)
    (cards / "run_card_default.dat").write_text(RUN_CARD)
    (cards / "me5_configuration.txt").write_text(ME5_CONFIGURATION)
    (cards / ".fake_model").write_text(str(model_path))
    (target / "SubProcesses" / "subproc.mg").write_text("P1_emep_mupmum\n")
    script = target / "bin" / "generate_events"
    script.write_text(GENERATE_EVENTS.format(python=sys.executable, mg=str(HERE)))
    script.chmod(0o755)
    print(f"INFO: Generating Helas calls for process: {processes[0]} WEIGHTED<=4 @1 ")
    print("INFO: Processing color information for process: e+ e- > mu+ mu- @1 ")
    print(f"Output to directory {target} done.")
    print(f'Type "launch" to generate events from this process, or see\n{target}/README')


# --- bin/generate_events ----------------------------------------------------------------------------
def _fmt_particle(p) -> str:
    pid, st, m1, m2, c1, c2, px, py, pz, e, mass, vt, hel = p
    return (
        f" {pid:8d} {st:2d} {m1:4d} {m2:4d} {c1:4d} {c2:4d} "
        f"{px:+.10e} {py:+.10e} {pz:+.10e} {e:.10e} {mass:.10e} {vt:.4e} {hel:.4e}"
    )


def _fmt_event_head(nup, idprup, xwgt, scale, aqed, aqcd) -> str:
    return f"{nup:2d} {idprup:6d} {xwgt:+13.7e} {scale:14.8e} {aqed:14.8e} {aqcd:14.8e}"


def _rwgt_card(text: str):
    """Reweight card → (options, [(name, [(block, id, value)])])."""
    opts = {"helicity": True, "mode": "LO"}
    launches: list[tuple[str, list]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        w = line.split()
        if w[0] == "change" and len(w) >= 3:
            opts[w[1].lower()] = (
                w[2].lower() not in ("false", "f", ".false.", "0", "off")
                if w[1].lower() == "helicity"
                else w[2]
            )
        elif w[0] == "launch":
            m = re.search(r"--rwgt_name=(\S+)", line)
            launches.append((m.group(1) if m else f"rwgt_{len(launches) + 1}", []))
        elif w[0] == "set" and len(w) >= 4 and launches:
            try:
                launches[-1][1].append((w[1].lower(), int(w[2]), float(w[3])))
            except ValueError:
                raise FakeError(
                    "InvalidCmd", f"reweight_card.dat line {n}: invalid set: {line!r}"
                ) from None
        else:
            raise FakeError("InvalidCmd", f"reweight_card.dat line {n}: unknown command {line!r}")
    return opts, launches


def _set_iseed_zero(path: Path) -> None:
    text = re.sub(r"^\s*\S+\s*=\s*iseed\b", "  0   = iseed", path.read_text(), flags=re.M)
    path.write_text(text)


def generate_events_main(argv: list[str]) -> int:
    procdir = Path(sys.argv[0]).resolve().parent.parent
    run = next((a for a in argv if not a.startswith("-")), "run_01")
    print("stty: 'standard input': Inappropriate ioctl for device")
    print(banner("M A D E V E N T"))
    print(f"INFO: load configuration from {procdir}/Cards/me5_configuration.txt")
    command = f"generate_events {' '.join(argv)}"
    if os.environ.get("FAKE_MG5_SLEEP"):  # a hanging run, for timeout tests
        print("INFO: Running Survey", flush=True)
        time.sleep(float(os.environ["FAKE_MG5_SLEEP"]))
    events_dir = procdir / "Events" / run
    try:
        _generate(procdir, run, events_dir)
    except FakeError as err:
        events_dir.mkdir(parents=True, exist_ok=True)
        fail(command, err, procdir / "ME5_debug")
    return 0


def _generate(procdir: Path, run: str, events_dir: Path) -> None:
    cards = procdir / "Cards"
    model = Model(Path((cards / ".fake_model").read_text().strip()))
    run_text = (cards / "run_card.dat").read_text()
    rc = parse_run_card(run_text)
    try:
        nevents = int(float(rc.get("nevents", "10000")))
        iseed = int(float(rc.get("iseed", "0")))
        e1, e2 = float(rc.get("ebeam1", "500")), float(rc.get("ebeam2", "500"))
    except ValueError as err:
        raise FakeError("InvalidRunCard", f"run_card.dat: {err}") from None
    norm = rc.get("event_norm", "average").lower()
    if nevents <= 0:
        raise FakeError("InvalidRunCard", f"nevents should be positive. Got {nevents}")
    if norm not in ("average", "sum", "unity", "bias"):
        raise FakeError("InvalidRunCard", f"event_norm {norm} is not valid")
    if e1 != e2:
        raise FakeError("InvalidRunCard", "the fake only simulates symmetric beams")
    if iseed == 0:
        iseed = 7
    param_text = (cards / "param_card.dat").read_text()
    card = parse_param_card(param_text)
    if ("sminputs", 1) not in card:
        raise FakeError("InvalidParamCard", "Block sminputs entry 1 (aewm1) missing in param_card")
    print(f"Generating {nevents} events with run name {run}")
    print(f"survey  {run} ")
    print("INFO: compile directory ")
    print("INFO: Using built-in libraries for PDFs")
    s = (e1 + e2) ** 2
    sigma = model.sigma(card, s)
    err = 0.0025 * sigma
    print("INFO:  Idle: 0,  Running: 0,  Completed: 1 [ current time: 10h00 ] ")
    print(f"  === Results Summary for run: {run} tag: tag_1 ===\n")
    print(f"     Cross-section :   {sigma:.4g} +- {err:.2g} pb")
    print(f"     Nb of events :  {nevents}\n ")
    rng = random.Random(iseed)
    bound = model.bound(card, s)
    ebeam = e1
    aqed = float(f"{1.0 / card[('sminputs', 1)]:.6e}")
    as_mz = card.get(("sminputs", 3), 0.118)
    aqcd = float(
        f"{as_mz / (1.0 + as_mz * 23.0 / (6.0 * math.pi) * math.log(math.sqrt(s) / 91.188)):.6e}"
    )
    xwgt = sigma if norm == "average" else sigma / nevents
    events = []
    while len(events) < nevents:
        x = rng.uniform(-1.0, 1.0)
        if rng.uniform(0.0, bound) > model.amp2(x, card, s):
            continue
        phi = rng.uniform(0.0, 2.0 * math.pi)
        hel = rng.choice((-1.0, 1.0))
        sth = math.sqrt(max(0.0, 1.0 - x * x))
        p = (ebeam * sth * math.cos(phi), ebeam * sth * math.sin(phi), ebeam * x)
        mu_hel = rng.choice((-1.0, 1.0))
        events.append(
            [
                (-11, -1, 0, 0, 0, 0, 0.0, 0.0, ebeam, ebeam, 0.0, 0.0, hel),
                (11, -1, 0, 0, 0, 0, -0.0, -0.0, -ebeam, ebeam, 0.0, 0.0, -hel),
                (-13, 1, 1, 2, 0, 0, p[0], p[1], p[2], ebeam, 0.0, 0.0, mu_hel),
                (13, 1, 1, 2, 0, 0, -p[0], -p[1], -p[2], ebeam, 0.0, 0.0, -mu_hel),
            ]
        )
    print("INFO: storing files of previous run ")
    syst = _systematics(rc, events, xwgt)
    # reweighting
    rw_path = cards / "reweight_card.dat"
    launches: list = []
    weights: list[list[float]] = [[] for _ in events]
    if rw_path.is_file():
        print("INFO: Running Reweighting ")
        rw_text = rw_path.read_text()
        for line in rw_text.splitlines():
            print(f"INFO: {line}")
        opts, launches = _rwgt_card(rw_text)
        cards_new = []
        for _name, sets in launches:
            new = dict(card)
            for block, pid, value in sets:
                if (block, pid) not in card:
                    raise FakeError(
                        "KeyError", f"'{block} {pid}' is not an entry of the param_card"
                    )
                new[(block, pid)] = value
            cards_new.append(new)
        for ev, wl in zip(events, weights):
            pz, e = ev[2][8], ev[2][9]
            pz_r, e_r = float(f"{pz:.10e}"), float(f"{e:.10e}")
            x = pz_r / e_r
            m_orig = model.amp2(x, card, s)
            for new in cards_new:
                wl.append(xwgt * model.amp2(x, new, s) / m_orig)
        n = len(events)
        for k, (name, _) in sorted(enumerate(launches), key=lambda t: t[1][0]):
            tot = sum(w[k] for w in weights)
            xs = tot if norm == "sum" else tot / n
            print(f"INFO: {name} : {xs:.6g} +- {err * xs / sigma:.2g} pb")
    events_dir.mkdir(parents=True, exist_ok=True)
    _write_lhe(
        events_dir / "unweighted_events.lhe.gz",
        procdir,
        run_text,
        param_text,
        card,
        launches,
        events,
        weights,
        xwgt=xwgt,
        sigma=sigma,
        err=err,
        ebeam=ebeam,
        scale=math.sqrt(s),
        aqed=aqed,
        aqcd=aqcd,
        syst=syst,
    )
    _set_iseed_zero(cards / "run_card.dat")
    print("INFO: Done")
    print("quit")
    _record(f"generate_events {run} {iseed}")


def _systematics(rc: dict, events, xwgt: float):
    """([(id, MUR, MUF)], weights per event) of the systematics module, or None (see module doc)."""
    if rc.get("use_syst", "False").strip().lower() not in ("true", ".true.", "t"):
        return None
    print("INFO: Running Systematics computation")
    if os.environ.get("FAKE_MG5_LHAPDF") != "1":
        print("WARNING: No version of lhapdf. Can not run systematics computation")
        return None
    args = rc.get("systematics_arguments", "")

    def factors(name):
        m = re.search(rf"--{name}=([0-9.,]+)", args)
        return [float(v) for v in m.group(1).split(",") if v] if m else [0.5, 1.0, 2.0]

    pairs = [(r, f) for r in factors("mur") for f in factors("muf") if (r, f) != (1.0, 1.0)]
    m = re.search(r"--pdf=([A-Za-z0-9_.-]+)", args)
    pdf_set = m.group(1) if m else "NNPDF23_lo_as_0130_qed"
    n_members = int(os.environ.get("FAKE_MG5_PDF_MEMBERS", "9")) if m else 1
    lhaid = {"NNPDF23_lo_as_0130_qed": 247000, "CT10": 10800}.get(pdf_set, 90000)
    ids = [(str(i), r, f, 247000) for i, (r, f) in enumerate(pairs, start=1)]
    ids += [(str(len(pairs) + 1 + k), 1.0, 1.0, lhaid + k) for k in range(n_members)]
    values = []
    for ev in events:
        x = ev[2][8] / ev[2][9]
        row = [xwgt * (1 + 0.1 * math.log(r) * x + 0.05 * math.log(f)) for r, f in pairs]
        row += [xwgt * (1 + 0.02 * (-1) ** k * ((k + 1) // 2) * x) for k in range(n_members)]
        values.append(row)
    print("INFO: Systematics computation done")
    combine = os.environ.get("FAKE_MG5_PDF_COMBINE", "hessian") if m else "replicas"
    return ids, values, (pdf_set, combine, len(pairs))


HEADER_COMMENT = """<!--
#*********************************************************************
#                                                                    *
#                        MadGraph5_aMC@NLO                           *
#                                                                    *
#                           Going Beyond                             *
#                                                                    *
#                   http://madgraph.hep.uiuc.edu                     *
#                   http://madgraph.phys.ucl.ac.be                   *
#                   http://amcatnlo.cern.ch                          *
#                                                                    *
#                     The MadGraph5_aMC@NLO team                     *
#                                                                    *
#....................................................................*
#                                                                    *
# This file contains all the information necessary to reproduce      *
# the events generated:                                              *
#                                                                    *
# 1. software version                                                *
# 2. proc_card          : code generation info including model       *
# 3. param_card         : model primary parameters in the LH format  *
# 4. run_card           : running parameters (collider and cuts)     *
# 5. pythia_card        : present only if pythia has been run        *
# 6. pgs_card           : present only if pgs has been run           *
# 7. delphes_cards      : present only if delphes has been run       *
#                                                                    *
#                                                                    *
#*********************************************************************
-->"""


def _write_lhe(path, procdir, run_text, param_text, card, launches, events, weights, **k) -> None:
    digits = int(os.environ.get("FAKE_MG5_WEIGHT_DIGITS", "7"))
    proc_card = (procdir / "Cards" / "proc_card_mg5.dat").read_text()
    process = next(
        (ln.split(None, 1)[1] for ln in proc_card.splitlines() if ln.startswith("generate")), ""
    )
    model = next(
        (ln.split()[2] for ln in proc_card.splitlines() if ln.startswith("import model")), "sm"
    )
    out = ['<LesHouchesEvents version="3.0">', "<header>", HEADER_COMMENT]
    out += ["<MGVersion>", mg_version(), "</MGVersion>"]
    out += ["<MG5ProcCard>", "<![CDATA[", proc_card.rstrip("\n"), "]]>", "</MG5ProcCard>"]
    out += [
        "<MGProcCard>",
        f"{process:<20s}#Process",
        "          ",
        "end_coup           # End the couplings input",
        "",
        "done               # this tells MG there are no more procs",
        model,
        "",
        "</MGProcCard>",
    ]
    out += ["<MGRunCard>", "<![CDATA[", run_text.rstrip("\n"), "]]>", "</MGRunCard>"]
    out += ["<slha>", param_text.rstrip("\n"), "</slha>"]
    syst = k.get("syst")
    if launches or syst:
        out.append("<initrwgt>")
    if syst:
        pdf_set, combine, n_scale = syst[2]
        out.append('<weightgroup name="Central scale variation" combine="envelope">')
        for wid, r, f, pdf in syst[0][:n_scale]:
            text = " ".join(f"{n}={v}" for n, v in (("MUR", r), ("MUF", f)) if v != 1.0)
            out.append(f'<weight id="{wid}" MUR="{r}" MUF="{f}" PDF="{pdf}" > {text}  </weight>')
        out.append("</weightgroup> # scale")
        out.append(f'<weightgroup name="{pdf_set}" combine="{combine}"> # {syst[0][n_scale][3]}')
        for wid, _, _, pdf in syst[0][n_scale:]:
            out.append(f'<weight id="{wid}" MUR="1.0" MUF="1.0" PDF="{pdf}" >  </weight>')
        out.append("</weightgroup> # PDFSET -> PDF")
    if launches:
        out += [
            "<weightgroup name='mg_reweighting' weight_name_strategy='includeIdInWeightName'>",
        ]
        for name, sets in launches:
            changed = sorted({(b, i): v for b, i, v in sets if card[(b, i)] != v}.items())
            text = "".join(
                f"set param_card {b} {i} {v!r} # orig: {card[(b, i)]!r}\n" for (b, i), v in changed
            )
            out.append(f"<weight id='{name}'>{text}</weight>")
        out.append("</weightgroup>")
    if launches or syst:
        out.append("</initrwgt>")
    out += [
        "<MGGenerationInfo>",
        f"#  Number of Events        :       {len(events)}",
        f"#  Integrated weight (pb)  :       {k['sigma']:.10g}",
        "</MGGenerationInfo>",
        "</header>",
        "<init>",
        f"-11 11 {k['ebeam']:.6e} {k['ebeam']:.6e} 0 0 0 0 -4 1",
        f"{k['sigma']:.6e} {k['err']:.6e} {k['sigma']:.6e} 1",
        f"<generator name='MadGraph5_aMC@NLO' version='{mg_version()}'>please cite 1405.0301 </generator>",
        "</init>",
    ]
    for i, (ev, wl) in enumerate(zip(events, weights)):
        out.append("<event>")
        out.append(_fmt_event_head(len(ev), 1, k["xwgt"], k["scale"], k["aqed"], k["aqcd"]))
        out += [_fmt_particle(p) for p in ev]
        if launches or syst:
            out.append("<rwgt>")
            if syst:
                out += [
                    f"<wgt id='{wid}'> {w:+.{digits}e} </wgt>"
                    for (wid, *_), w in zip(syst[0], syst[1][i])
                ]
            out += [
                f"<wgt id='{name}'> {w:+.{digits}e} </wgt>" for (name, _), w in zip(launches, wl)
            ]
            out.append("</rwgt>")
        out.append("</event>")
    out.append("</LesHouchesEvents>")
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as fh:
        fh.write(("\n".join(out) + "\n").encode())
    os.replace(tmp, path)
