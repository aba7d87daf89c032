"""The ``builtin`` generator: Drell–Yan pp → γ*/Z → ℓ⁺ℓ⁻ from Pythia 8, reweighted to every benchmark.

Pythia 8 (``pythia8mc``, its internal PDFs) generates the hard process
``WeakSingleBoson:ffbar2gmZ`` with Z → ee/μμ at ``Beams:eCM = 13000`` in one mℓℓ slice
(``PhaseSpace:mHatMin/Max``), seeded with ``Random:seed`` = the job seed, with parton and hadron
level switched off (hard process only; the shower stage runs later on the LHE file). Each event is
unweighted at the SM; its SM weight is σ/N in pb with σ = Pythia's ``sigmaGen`` at the end of the
run, and its weight at benchmark θ_b is weight_SM × |M(θ_b)|²/|M_SM|² computed by
:mod:`eftflow.physics.drellyan` from the hard-process record: the incoming quark is the incoming
parton with positive id (either beam), ŝ = Pythia's ``sHat``, cos θ* = angle between the quark and
the ℓ⁻ in the ℓℓ rest frame, α_EM(ŝ) = Pythia's running α (cancels for W, Y). The electroweak
inputs are read from Pythia after ``init()`` (m_Z, the recomputed Γ_Z ≈ 2.504 GeV,
``sin2thetaW``, ``sin2thetaWbar``, m_W), so the SM weight is Pythia's own.

Output: an LHEF 3.0 file, gzip, written atomically, that Pythia reads back with
``Beams:frameType = 4``:

* ``<header>`` holds ``<eftflow>`` (CDATA JSON ``{"event_norm": "sum", "weight_ids": [...],
  "provenance": {generator, Pythia version, seed, sample, job, slice, EW inputs, σ}}``, the same
  block as :class:`eftflow.generate.lhe_write.LHEWriter` writes) and ``<initrwgt>`` with one ``<weight id="<benchmark name>">`` per physics
  benchmark of the setup, in setup order (nuisance benchmarks, e.g. ``norm`` systematics, are not
  per-event generator weights and are left to the later stages), and for the setup's ``scale``
  systematics a group ``Central scale variation`` in the layout of MadGraph's systematics module,
  one weight per (μ_R, μ_F) pair (:func:`scale_factors`: the PDF ratio at k·Q; μ_R has no effect
  on leading-order Drell–Yan), read into nuisance weights by :mod:`eftflow.generate.systematics`;
* ``<init>``: beams 2212 2212 at 6500 GeV, PDF set 247000 (NNPDF2.3 QCD+QED LO, Pythia's default),
  IDWTUP = −4 (as MadGraph; Pythia then hands the ``<rwgt>`` values through unchanged), XSECUP = σ_SM, XERRUP = Pythia's ``sigmaErr`` (known to be 1.2–1.5× too small);
* each event: q, q̄ (status −1, colour line 501), the γ*/Z (status 2), ℓ⁻, ℓ⁺ (status 1),
  XWGTUP = weight_SM, SCALUP = √Q²_fac = mℓℓ, AQEDUP = α_EM(ŝ), AQCDUP = α_s, a
  ``#pdf id1 id2 x1 x2 Q xf1 xf2`` line and ``<rwgt>`` with weights in pb (Σ over the file = σ(θ_b)),
  written with 16 significant digits so morphing closes to 1e-12.

``pythia8mc`` ships ``LHEF3FromPythia8``, but it writes Pythia's own weight container and the
cross section only as known when each event is written; the benchmark weights here need σ from
the end of the run, so events are generated into temporary chunk files (flat memory) and the LHE
file is written from them afterwards.

Options (``job.options``; see :data:`OPTIONS_SCHEMA`): ``slices``, ``mll``, ``leptons``, ``ecm``,
``parameter_map``, ``pythia_settings``, ``chunk_size``.

Example
-------
>>> from eftflow.generate.builtin import BuiltinGenerator, samples_from_options
>>> samples_from_options({"slices": [[120, 200], [200, None]]})
{'mll_120_200': (120.0, 200.0), 'mll_200_inf': (200.0, None)}
"""

from __future__ import annotations

import gzip
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from eftflow.errors import BackendError, ConfigError
from eftflow.generate.base import GenerationJob, GenerationResult
from eftflow.generate.systematics import SCALE_GROUP, scale_variations
from eftflow.physics.drellyan import COEFFICIENTS, EWParameters, cos_theta_star, weight_ratios
from eftflow.progress import progress
from eftflow.store.atomic import atomic_path

__all__ = [
    "BuiltinGenerator",
    "DEFAULT_SLICES",
    "OPTIONS_SCHEMA",
    "samples_from_options",
    "pythia_settings",
    "scale_factors",
]

log = logging.getLogger(__name__)

MB_TO_PB = 1.0e9
LEPTON_IDS = {"e": 11, "mu": 13}
PDF_LHAID = 247000  # NNPDF2.3 QCD+QED LO, Pythia's default PDF:pSet = 13
MAX_FAILURES = 1000

#: default mℓℓ slices (GeV): the Z peak region and the high-mass tail where W, Y matter
DEFAULT_SLICES = {
    "mll_120_200": (120.0, 200.0),
    "mll_200_500": (200.0, 500.0),
    "mll_500_1000": (500.0, 1000.0),
    "mll_1000_3000": (1000.0, 3000.0),
}

#: JSON-schema fragment of the ``builtin`` generator options
OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "slices": {
            "description": (
                "mℓℓ slices in GeV, each a sample with its own cross section: a mapping "
                "name -> [mmin, mmax] or a list of [mmin, mmax] (named mll_<mmin>_<mmax>); "
                "mmax null (or negative, MadGraph's -1) = no upper limit. The job's sample name "
                "selects its slice."
            ),
            "oneOf": [
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/mll_range"}},
                {"type": "array", "items": {"$ref": "#/$defs/mll_range"}, "minItems": 1},
            ],
            "default": {k: list(v) for k, v in DEFAULT_SLICES.items()},
        },
        "mll": {
            "description": "explicit [mmin, mmax] of this job (overrides the slice lookup)",
            "$ref": "#/$defs/mll_range",
        },
        "leptons": {
            "description": "lepton flavours of the Z/γ* decay",
            "type": "array",
            "items": {"enum": ["e", "mu"]},
            "minItems": 1,
            "uniqueItems": True,
            "default": ["e", "mu"],
        },
        "ecm": {
            "description": "pp centre-of-mass energy, GeV",
            "type": "number",
            "default": 13000.0,
        },
        "parameter_map": {
            "description": (
                "setup parameter name -> builtin coefficient (W, Y, clq1, clq3, ceu, ced, clu, cld, "
                "cqe); parameters not listed must carry one of these names"
            ),
            "type": "object",
            "additionalProperties": {"enum": list(COEFFICIENTS)},
            "default": {},
        },
        "pythia_settings": {
            "description": "extra Pythia 'Key = value' strings (e.g. 'PDF:pSet = 8')",
            "type": "array",
            "items": {"type": "string"},
            "default": [],
        },
        "chunk_size": {
            "description": "events per temporary chunk (memory bound while generating)",
            "type": "integer",
            "minimum": 1,
            "default": 100000,
        },
    },
    "$defs": {
        "mll_range": {
            "type": "array",
            "prefixItems": [{"type": "number", "minimum": 0}, {"type": ["number", "null"]}],
            "minItems": 2,
            "maxItems": 2,
        }
    },
}


def _range(value, field: str) -> tuple[float, float | None]:
    try:
        lo, hi = value
        lo = float(lo)
        hi = None if hi is None or (isinstance(hi, (int, float)) and hi < 0) else float(hi)
    except (TypeError, ValueError):
        raise ConfigError(f"expected [mmin, mmax] in GeV, got {value!r}", field=field) from None
    if not np.isfinite(lo) or lo < 0 or (hi is not None and not hi > lo):
        raise ConfigError(f"need 0 <= mmin < mmax, got {value!r}", field=field)
    return lo, hi


def _slice_name(lo: float, hi: float | None) -> str:
    def fmt(v):
        return (
            "inf"
            if v is None
            else (str(int(v)) if float(v).is_integer() else str(v).replace(".", "p"))
        )

    return f"mll_{fmt(lo)}_{fmt(hi)}"


def _sm_benchmark(names: list[str], theta: np.ndarray) -> str | None:
    """The first benchmark at θ = 0 (the builtin generator always samples at the SM)."""
    for name, row in zip(names, theta):
        if not np.any(row):
            return name
    return None


def samples_from_options(options: dict) -> dict[str, tuple[float, float | None]]:
    """The samples (mℓℓ slices) the options define: ``{name: (mmin, mmax)}``."""
    slices = options.get("slices", DEFAULT_SLICES)
    if isinstance(slices, dict):
        return {str(k): _range(v, f"slices.{k}") for k, v in slices.items()}
    if isinstance(slices, (list, tuple)) and slices:
        out = {}
        for i, v in enumerate(slices):
            lo, hi = _range(v, f"slices[{i}]")
            out[_slice_name(lo, hi)] = (lo, hi)
        return out
    raise ConfigError(f"expected a mapping or a non-empty list, got {slices!r}", field="slices")


def _job_slice(job: GenerationJob) -> tuple[float, float | None]:
    opts = job.options or {}
    if "mll" in opts:
        return _range(opts["mll"], "mll")
    samples = samples_from_options(opts)
    if job.sample in samples:
        return samples[job.sample]
    if len(samples) == 1:
        return next(iter(samples.values()))
    raise ConfigError(
        f"sample {job.sample!r} is not one of the builtin generator's mll slices "
        f"({', '.join(samples)}; set by generation.builtin.slices)",
        field="generation.samples",
    )


def pythia_settings(
    mll: tuple[float, float | None],
    seed: int,
    *,
    leptons=("e", "mu"),
    ecm: float = 13000.0,
    extra=(),
) -> list[str]:
    """The Pythia settings of one builtin job (hard process only)."""
    if not 1 <= int(seed) <= 900_000_000:
        raise ConfigError(f"Pythia seeds must be in [1, 900000000], got {seed}", field="seed")
    ids = []
    for lep in leptons:
        if lep not in LEPTON_IDS:
            raise ConfigError(f"unknown lepton {lep!r}; expected e or mu", field="leptons")
        ids.append(str(LEPTON_IDS[lep]))
    lo, hi = mll
    out = [
        f"Beams:eCM = {float(ecm)}",
        "WeakSingleBoson:ffbar2gmZ = on",
        "23:onMode = off",
        f"23:onIfAny = {' '.join(ids)}",
        f"PhaseSpace:mHatMin = {lo}",
        f"PhaseSpace:mHatMax = {-1.0 if hi is None else hi}",
        "PartonLevel:all = off",
        "HadronLevel:all = off",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
        "Print:quiet = on",
        "Next:numberCount = 0",
    ]
    return out + [str(s) for s in extra]


def _benchmarks(setup, parameter_map: dict) -> tuple[list[str], np.ndarray, list[str]]:
    """Physics benchmark names, their θ (n_b, n_p) and the builtin coefficient names."""
    names = list(setup.parameter_names)
    coeffs = []
    for p in names:
        c = parameter_map.get(p, p)
        if c not in COEFFICIENTS:
            raise ConfigError(
                f"parameter {p!r} is not a builtin Drell-Yan coefficient; name it one of "
                f"{', '.join(COEFFICIENTS)} or map it with parameter_map",
                field=f"parameter_map.{p}",
            )
        coeffs.append(c)
    bench = setup.physics_benchmarks()
    if not bench:
        raise ConfigError("the setup has no physics benchmarks", field="benchmarks")
    return [b.name for b in bench], setup.benchmark_array(), coeffs


def _make_pythia(settings: list[str]):
    import pythia8mc

    p = pythia8mc.Pythia("", False)
    for s in settings:
        if not p.readString(s):
            raise ConfigError(f"Pythia does not accept the setting {s!r}", field="pythia_settings")
    if not p.init():
        raise BackendError("Pythia init() failed", field="pythia_settings")
    return p


_COLS = ("id", "status", "mother1", "mother2", "col", "acol", "px", "py", "pz", "e", "m")
_INFO = ("id1", "id2", "x1", "x2", "q", "pdf1", "pdf2", "shat", "alpha_em", "alpha_s")


def _read_hard_process(p) -> tuple[np.ndarray, list[float]]:
    """Entries 3..7 of Pythia's process record (q/q̄, q/q̄, γ*/Z, ℓ, ℓ) and the event info."""
    rec = p.process
    rows = np.empty((5, len(_COLS)))
    for k, i in enumerate(range(3, 8)):
        r = rec[i]
        rows[k] = (
            r.id(), r.status(), r.mother1(), r.mother2(), r.col(), r.acol(),
            r.px(), r.py(), r.pz(), r.e(), r.m(),
        )  # fmt: skip
    info = p.infoPython()
    extra = [
        info.id1pdf(), info.id2pdf(), info.x1pdf(), info.x2pdf(), np.sqrt(info.Q2Fac()),
        info.pdf1(), info.pdf2(), info.sHat(), info.alphaEM(), info.alphaS(),
    ]  # fmt: skip
    return rows, extra


def event_kinematics(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quark id and cos θ* from hard-process arrays (n, 5, len(_COLS)) in the builtin layout."""
    ids = parts[:, :2, 0]
    iq = np.where(ids[:, 0] > 0, 0, 1)
    n = parts.shape[0]
    quark = parts[np.arange(n), iq]
    leps = parts[:, 3:5]
    il = np.where(leps[:, 0, 0] > 0, 0, 1)
    lm = leps[np.arange(n), il]
    lp = leps[np.arange(n), 1 - il]
    mom = slice(6, 10)
    return quark[:, 0], cos_theta_star(quark[:, mom], lm[:, mom], lp[:, mom])


class BuiltinGenerator:
    """Drell–Yan from Pythia 8's hard process with analytic EFT reweighting (see module doc)."""

    name = "builtin"

    def generate(self, job: GenerationJob) -> GenerationResult:
        """Generate ``job.n_events`` events of one mℓℓ slice and write ``job.output`` (.lhe.gz).

        Errors in the options name their config key (``generation.builtin.<option>``).
        """
        try:
            return self._generate(job)
        except ConfigError as err:
            field = err.field or ""
            if field and not field.startswith(("generation.", "systematics.", "benchmarks")):
                field = {
                    "n_events": "generation.n_events_per_job",
                    "sampling_benchmark": f"generation.samples.{job.sample}.sampling_benchmark",
                }.get(field, f"generation.builtin.{field}")
                raise ConfigError(err.message, file=err.file, field=field) from None
            raise

    def _generate(self, job: GenerationJob) -> GenerationResult:
        opts = dict(job.options or {})
        unknown = set(opts) - set(OPTIONS_SCHEMA["properties"])
        if unknown:
            raise ConfigError(
                f"unknown builtin option {sorted(unknown)[0]!r}; expected one of "
                f"{', '.join(OPTIONS_SCHEMA['properties'])}",
                field=sorted(unknown)[0],
            )
        if int(job.n_events) < 1:
            raise ConfigError(f"n_events must be positive, got {job.n_events}", field="n_events")
        mll = _job_slice(job)
        leptons = tuple(opts.get("leptons", ("e", "mu")))
        ecm = float(opts.get("ecm", 13000.0))
        chunk = int(opts.get("chunk_size", 100_000))
        bnames, theta, coeffs = _benchmarks(job.setup, dict(opts.get("parameter_map", {})))
        if job.sampling_benchmark is not None:
            idx = bnames.index(job.sampling_benchmark) if job.sampling_benchmark in bnames else None
            if idx is None or np.any(theta[idx] != 0.0):
                raise ConfigError(
                    f"the builtin generator samples at the SM; sampling benchmark "
                    f"{job.sampling_benchmark!r} is not an SM benchmark of the setup",
                    field="sampling_benchmark",
                )
        settings = pythia_settings(
            mll, job.seed, leptons=leptons, ecm=ecm, extra=opts.get("pythia_settings", ())
        )
        out = Path(job.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        p = _make_pythia(settings)
        ew = EWParameters.from_pythia(p)
        pdf = [s.name for s in job.setup.systematics.values() if s.type == "pdf"]
        if pdf:
            raise ConfigError(
                f"pdf systematic {pdf[0]!r}: the builtin generator runs on Pythia's internal PDF, "
                "which has no error members; PDF systematics need MadGraph with LHAPDF",
                field=f"systematics.{pdf[0]}",
            )
        variations = scale_variations(job.setup)
        scale_ids = [f"scale_{k + 1}" for k in range(len(variations))]
        if set(scale_ids) & set(bnames):
            raise ConfigError(
                f"benchmark names {', '.join(sorted(set(scale_ids) & set(bnames)))} are the "
                "builtin generator's scale-variation weight ids; rename them",
                field="benchmarks",
            )
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.chunks-") as tmp:
            files = self._run(p, job.n_events, chunk, theta, coeffs, ew, Path(tmp), variations)
            info = p.infoPython()
            sigma = info.sigmaGen() * MB_TO_PB
            sigma_err = info.sigmaErr() * MB_TO_PB
            n_acc = int(info.nAccepted())
            if n_acc != job.n_events:
                raise BackendError(f"Pythia accepted {n_acc} events, expected {job.n_events}")
            w_sm = sigma / n_acc
            prov = {
                "generator": "builtin",
                "pythia_version": _pythia_version(),
                "seed": int(job.seed),
                "sample": job.sample,
                "job_index": int(job.job_index),
                "sampling_benchmark": job.sampling_benchmark or _sm_benchmark(bnames, theta),
                "mll": list(mll),
                "leptons": list(leptons),
                "ecm": ecm,
                "ew_parameters": ew.as_dict(),
                "coefficients": dict(zip(job.setup.parameter_names, coeffs)),
                "sigma_pb": sigma,
                "sigma_err_pb": sigma_err,
                "n_tried": int(info.nTried()),
                "pythia_settings": settings,
                **(job.provenance or {}),
            }
            if variations:
                prov["scale_variations"] = [list(v) for v in variations]
            totals = _write_lhe(
                out,
                files,
                bnames,
                w_sm,
                sigma,
                sigma_err,
                ecm,
                prov,
                dict(zip(scale_ids, variations)),
            )
        elapsed = time.perf_counter() - t0
        log.info(
            "builtin %s job %d: %d events, sigma_SM = %.6g +- %.2g pb, %.0f events/s",
            job.sample, job.job_index, n_acc, sigma, sigma_err, n_acc / max(elapsed, 1e-9),
        )  # fmt: skip
        rel = sigma_err / sigma if sigma > 0 else 0.0
        return GenerationResult(
            output=out,
            n_events=n_acc,
            cross_sections=dict(zip(bnames, map(float, totals))),
            cross_section_errors={b: float(abs(t) * rel) for b, t in zip(bnames, totals)},
            metadata={"mll": list(mll), "seed": int(job.seed), "ew_parameters": ew.as_dict(),
                      "n_tried": int(info.nTried()), "seconds": elapsed},
        )  # fmt: skip

    @staticmethod
    def _run(p, n_events, chunk, theta, coeffs, ew, tmp: Path, variations=()) -> list[Path]:
        files: list[Path] = []
        pdf = p.getPDFPtr(2212) if variations else None
        done = failures = 0
        with progress(n_events, "generate_events (builtin)", logger=log) as bar:
            while done < n_events:
                m = min(chunk, n_events - done)
                parts = np.empty((m, 5, len(_COLS)))
                info = np.empty((m, len(_INFO)))
                k = 0
                while k < m:
                    if not p.next():
                        failures += 1
                        if failures > MAX_FAILURES:
                            raise BackendError(
                                f"Pythia failed {failures} times in a row; giving up"
                            )
                        continue
                    failures = 0
                    parts[k], info[k] = _read_hard_process(p)
                    k += 1
                qid, cos = event_kinematics(parts)
                ratios = weight_ratios(info[:, 7], cos, qid, theta, coeffs, ew, alpha_em=info[:, 8])
                if not np.all(np.isfinite(ratios)):
                    raise BackendError("non-finite EFT/SM weight ratio: check the benchmark values")
                scale = scale_factors(pdf, info, variations)
                f = tmp / f"chunk{len(files):06d}.npz"
                np.savez(f, parts=parts, info=info, ratios=ratios, scale=scale)
                files.append(f)
                done += m
                bar.update(m)
        return files


def _pythia_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pythia8mc")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


_ISTUP = {-21: -1, -22: 2, 23: 1}


def scale_factors(pdf, info: np.ndarray, variations) -> np.ndarray:
    """Per-event weight factors (n, n_variations) of the (μ_R, μ_F) scale variations.

    Drell–Yan at leading order has no α_s, so μ_R leaves the weight unchanged and a μ_F
    variation by k is the PDF ratio f₁(x₁, kQ) f₂(x₂, kQ) / f₁(x₁, Q) f₂(x₂, Q) with Pythia's own
    PDF (``pdf``: ``Pythia.getPDFPtr(2212)``) at the event's ids, x and factorisation scale Q.
    """
    out = np.ones((len(info), len(variations)))
    kf = [(j, float(muf) ** 2) for j, (_, muf) in enumerate(variations) if float(muf) != 1.0]
    if not kf:
        return out
    xf = pdf.xf
    for i, (id1, id2, x1, x2, q) in enumerate(info[:, :5].tolist()):
        q2 = q * q
        id1, id2 = int(id1), int(id2)
        nominal = xf(id1, x1, q2) * xf(id2, x2, q2)
        if nominal <= 0.0:
            raise BackendError(f"event {i}: Pythia's PDF is {nominal!r} at the event's x and Q")
        for j, k2 in kf:
            out[i, j] = xf(id1, x1, k2 * q2) * xf(id2, x2, k2 * q2) / nominal
    return out


def _write_lhe(
    out: Path, files, bnames, w_sm, sigma, sigma_err, ecm, prov, scale: dict | None = None
) -> np.ndarray:
    """Write the LHEF 3 gzip file from the chunk files; return Σ weights per benchmark.

    ``scale``: ``{weight id: (μ_R, μ_F)}`` of scale variations, written as MadGraph's systematics
    module does (group ``Central scale variation``, attributes MUR, MUF, PDF).
    """
    scale = dict(scale or {})
    totals = np.zeros(len(bnames))
    ebeam = ecm / 2.0
    with atomic_path(out) as tmp:
        with gzip.open(tmp, "wt", compresslevel=4, encoding="ascii") as fh:
            ids = [*bnames, *scale]
            meta = {"event_norm": "sum", "weight_ids": ids, "provenance": prov}
            fh.write('<LesHouchesEvents version="3.0">\n<header>\n<eftflow>\n<![CDATA[\n')
            fh.write(json.dumps(meta, sort_keys=True, default=str).replace("]]>", "]] >"))
            fh.write("\n]]>\n</eftflow>\n<initrwgt>\n")
            fh.write("<weightgroup name='eftflow' weight_name_strategy='includeIdInWeightName'>\n")
            for b in bnames:
                fh.write(f"<weight id='{b}'>{b}</weight>\n")
            fh.write("</weightgroup>\n")
            if scale:
                fh.write(f'<weightgroup name="{SCALE_GROUP}" combine="envelope">\n')
                for wid, (mur, muf) in scale.items():
                    fh.write(
                        f'<weight id="{wid}" MUR="{mur!r}" MUF="{muf!r}" PDF="{PDF_LHAID}" > '
                        f"MUR={mur!r} MUF={muf!r} </weight>\n"
                    )
                fh.write("</weightgroup>\n")
            fh.write("</initrwgt>\n</header>\n<init>\n")
            fh.write(f"2212 2212 {ebeam:.8e} {ebeam:.8e} 0 0 {PDF_LHAID} {PDF_LHAID} -4 1\n")
            fh.write(f"{sigma:.10e} {sigma_err:.10e} {w_sm:.10e} 1\n</init>\n")
            for f in files:
                with np.load(f, allow_pickle=False) as d:
                    parts, info, ratios = d["parts"], d["info"], d["ratios"]
                    factors = d["scale"]
                weights = ratios * w_sm
                totals += weights.sum(axis=0)
                if scale:
                    weights = np.concatenate([weights, factors * w_sm], axis=1)
                fh.write(_format_events(parts, info, weights, ids, w_sm))
            fh.write("</LesHouchesEvents>\n")
    return totals


def _format_events(parts, info, weights, bnames, w_sm) -> str:
    lines = []
    line = "%5d %2d %4d %4d %4d %4d %+.10e %+.10e %+.10e %.10e %.10e 0.0000e+00 9.0000e+00"
    wfmt = "".join(f"<wgt id='{b}'> %+.15e </wgt>\n" for b in bnames)
    for k in range(parts.shape[0]):
        ev = parts[k]
        inf = info[k]
        lines.append(f"<event>\n 5 1 {w_sm:+.10e} {inf[4]:.10e} {inf[8]:.10e} {inf[9]:.10e}\n")
        for i in range(5):
            r = ev[i]
            st = _ISTUP[int(r[1])]
            m1, m2 = (0, 0) if st == -1 else ((1, 2) if st == 2 else (3, 3))
            lines.append(line % (r[0], st, m1, m2, r[4], r[5], r[6], r[7], r[8], r[9], r[10]))
            lines.append("\n")
        lines.append(
            f"#pdf {int(inf[0])} {int(inf[1])} {inf[2]:.10e} {inf[3]:.10e} {inf[4]:.10e} "
            f"{inf[5]:.10e} {inf[6]:.10e}\n<rwgt>\n"
        )
        lines.append(wfmt % tuple(weights[k]))
        lines.append("</rwgt>\n</event>\n")
    return "".join(lines)
