"""Parse the header and ``<init>`` block of an LHE file (LHEF 3.0, MadGraph's extensions).

What is extracted (:class:`LHEHeader`):

* ``<initrwgt>``: weight groups and weight ids (single or double quotes, any attribute order);
* ``<MGVersion>``, ``<MGRunCard>`` (parsed into a dict ``name -> value`` from the
  ``value = name ! comment`` lines), ``<slha>`` (the param card text), ``<MGGenerationInfo>``
  (number of events, integrated weight in pb), ``<MG5ProcCard>``;
* ``<eftflow>``: the JSON metadata eftflow's :class:`~eftflow.generate.lhe_write.LHEWriter` writes;
* ``<init>``: beams, PDFs, IDWTUP and the process lines (:class:`LHEInit`).

Weight normalisation (:attr:`LHEHeader.event_norm`): ``"sum"`` means the weights are pb per
event (Σ = σ); ``"average"`` (MadGraph's default run card) means the *mean* weight is σ, so the
reader divides by the number of events, as MadMiner does. It comes from the ``<eftflow>`` block,
else from the run card's ``event_norm``, else ``"sum"``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from eftflow.errors import InputError
from eftflow.generate.lhe_events import LHEInit, LHEProcess

__all__ = ["LHEHeader", "WeightInfo", "parse_header", "parse_run_card", "parse_generation_info"]

_ATTR = re.compile(r"""([A-Za-z_][\w.:-]*)\s*=\s*(?:'([^']*)'|"([^"]*)")""")
_WEIGHTGROUP = re.compile(r"<weightgroup\b([^>]*)>(.*?)</weightgroup\s*>", re.S)
_WEIGHT = re.compile(r"<weight\b([^>]*)>(.*?)</weight\s*>", re.S)


def _attrs(text: str) -> dict[str, str]:
    return {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _ATTR.finditer(text)
    }


def _block(text: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}\s*>", text, re.S)
    if m is None:
        return None
    body = m.group(1)
    cdata = re.search(r"<!\[CDATA\[(.*?)\]\]>", body, re.S)
    return (cdata.group(1) if cdata else body).strip("\n")


@dataclass(frozen=True)
class WeightInfo:
    """One ``<weight>`` of ``<initrwgt>``."""

    id: str
    group: str | None
    text: str
    attrs: dict = field(default_factory=dict)
    #: attributes of its ``<weightgroup>`` (e.g. ``combine="hessian"``)
    group_attrs: dict = field(default_factory=dict)


@dataclass
class LHEHeader:
    """Everything before the first event."""

    version: str
    init: LHEInit
    weights: list[WeightInfo]
    text: str
    n_lines: int
    mg_version: str | None = None
    run_card: dict[str, str] = field(default_factory=dict)
    param_card: str | None = None
    proc_card: str | None = None
    generation_info: dict[str, float] = field(default_factory=dict)
    eftflow: dict = field(default_factory=dict)

    @property
    def weight_ids(self) -> list[str]:
        """All weight ids in declaration order (the order of ``<wgt>`` in every event)."""
        return [w.id for w in self.weights]

    def group_ids(self, group: str) -> list[str]:
        """Weight ids of one weight group (e.g. ``"mg_reweighting"``)."""
        return [w.id for w in self.weights if w.group == group]

    @property
    def event_norm(self) -> str:
        """``"sum"`` or ``"average"`` (see the module docstring)."""
        norm = self.eftflow.get("event_norm") or self.run_card.get("event_norm") or "sum"
        return str(norm).strip().lower()

    @property
    def n_events(self) -> int | None:
        """Number of events declared by the header (MGGenerationInfo, else run card), if any."""
        if "n_events" in self.generation_info:
            return int(self.generation_info["n_events"])
        if "nevents" in self.run_card:
            try:
                return int(float(self.run_card["nevents"]))
            except ValueError:
                return None
        return None


def parse_run_card(text: str) -> dict[str, str]:
    """MadGraph run card lines ``value = name ! comment`` → ``{name: value}`` (names lower-case)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("!", 1)[0].strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        value, name = (s.strip() for s in line.rsplit("=", 1))
        if name and " " not in name:
            out[name.lower()] = value
    return out


def parse_generation_info(text: str) -> dict[str, float]:
    """``<MGGenerationInfo>``: ``n_events`` and ``integrated_weight`` (pb)."""
    out: dict[str, float] = {}
    m = re.search(r"Number of Events\s*:\s*([0-9.eE+-]+)", text)
    if m:
        out["n_events"] = float(m.group(1))
    m = re.search(r"Integrated weight \(pb\)\s*:\s*([0-9.eE+-]+)", text)
    if m:
        out["integrated_weight"] = float(m.group(1))
    return out


def _parse_init(lines: list[str], first_line: int, path) -> LHEInit:
    rows = []
    extra = []
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        if s.startswith("<") or s.startswith("#"):
            extra.append(s)
            continue
        try:
            rows.append((first_line + i, [float(t) for t in s.split()]))
        except ValueError:
            raise InputError(
                f"<init> line is not numeric: {s[:80]!r}", file=path, field=f"line {first_line + i}"
            ) from None
    if not rows or len(rows[0][1]) != 10:
        where = rows[0][0] if rows else first_line
        raise InputError(
            "<init> must start with 10 numbers: IDBMUP(2) EBMUP(2) PDFGUP(2) PDFSUP(2) IDWTUP NPRUP",
            file=path,
            field=f"line {where}",
        )
    b = rows[0][1]
    nprup = int(b[9])
    if len(rows) - 1 < nprup:
        raise InputError(
            f"<init> declares {nprup} processes, found {len(rows) - 1}",
            file=path,
            field=f"line {rows[0][0]}",
        )
    procs = []
    for lineno, r in rows[1 : 1 + nprup]:
        if len(r) != 4:
            raise InputError(
                "process line must have 4 numbers: XSECUP XERRUP XMAXUP LPRUP",
                file=path,
                field=f"line {lineno}",
            )
        procs.append(LHEProcess(r[0], r[1], r[2], int(r[3])))
    return LHEInit(
        beam_ids=(int(b[0]), int(b[1])),
        beam_energies=(b[2], b[3]),
        pdf_groups=(int(b[4]), int(b[5])),
        pdf_sets=(int(b[6]), int(b[7])),
        weighting_strategy=int(b[8]),
        processes=tuple(procs),
        extra_lines=tuple(extra),
    )


def parse_header(text: str, *, path=None) -> LHEHeader:
    """Parse everything up to and including ``</init>`` (``text`` ends with that line)."""
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    m = re.match(r"\s*<LesHouchesEvents\b([^>]*)>", lines[first] if lines else "")
    if m is None:
        raise InputError(
            "not an LHE file: expected <LesHouchesEvents version=...>",
            file=path,
            field=f"line {first + 1}",
        )
    version = _attrs(m.group(1)).get("version", "1.0")
    init_start = next((i for i, line in enumerate(lines) if re.match(r"\s*<init[\s>]", line)), None)
    init_end = next((i for i, line in enumerate(lines) if re.match(r"\s*</init[\s>]", line)), None)
    if init_start is None or init_end is None or init_end < init_start:
        raise InputError(
            "no complete <init> block before the first event", file=path, field=f"line {len(lines)}"
        )
    init = _parse_init(lines[init_start + 1 : init_end], init_start + 2, path)
    head = "\n".join(lines[:init_start])

    weights: list[WeightInfo] = []
    initrwgt = re.search(r"<initrwgt\b[^>]*>(.*?)</initrwgt\s*>", head, re.S)
    if initrwgt:
        body = initrwgt.group(1)
        spans = []
        for g in _WEIGHTGROUP.finditer(body):
            gattrs = _attrs(g.group(1))
            name = gattrs.get("name") or gattrs.get("type")
            for w in _WEIGHT.finditer(g.group(2)):
                spans.append((g.start() + w.start(), w, name, gattrs))
        inside = [(g.start(), g.end()) for g in _WEIGHTGROUP.finditer(body)]
        for w in _WEIGHT.finditer(body):  # weights outside any group
            if not any(a <= w.start() < b for a, b in inside):
                spans.append((w.start(), w, None, {}))
        for _, w, group, gattrs in sorted(spans, key=lambda s: s[0]):
            a = _attrs(w.group(1))
            if "id" not in a:
                lineno = head[: initrwgt.start(1)].count("\n") + body[: w.start()].count("\n") + 1
                raise InputError(
                    "<weight> without an id attribute", file=path, field=f"line {lineno}"
                )
            weights.append(
                WeightInfo(a.pop("id").strip(), group, w.group(2).strip(), a, dict(gattrs))
            )
        ids = [w.id for w in weights]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise InputError(
                f"duplicate weight ids in <initrwgt>: {', '.join(dup)}", file=path, field="initrwgt"
            )

    eft = {}
    eft_text = _block(head, "eftflow")
    if eft_text:
        try:
            eft = json.loads(eft_text)
        except json.JSONDecodeError as err:
            raise InputError(
                f"<eftflow> block is not valid JSON: {err.msg}", file=path, field="header.eftflow"
            ) from None
    run_text = _block(head, "MGRunCard")
    gen_text = _block(head, "MGGenerationInfo")
    mg_version = _block(head, "MGVersion")
    return LHEHeader(
        version=version,
        init=init,
        weights=weights,
        text=text,
        n_lines=text.count("\n"),
        mg_version=mg_version.strip() if mg_version else None,
        run_card=parse_run_card(run_text) if run_text else {},
        param_card=_block(head, "slha"),
        proc_card=_block(head, "MG5ProcCard"),
        generation_info=parse_generation_info(gen_text) if gen_text else {},
        eftflow=eft,
    )
