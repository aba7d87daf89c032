"""What the shower reads from an LHE file before and while Pythia does.

The header's weight ids and eftflow provenance (:func:`read_lhe_header`), a full read of the
events to catch truncation and malformed weights and to find the weight normalisation
(:func:`check_lhe_events`), and the mapping of Pythia's per-event weights to benchmark columns
(:func:`batch_weights`, :func:`weight_columns`). Used by :mod:`eftflow.shower.pythia`.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np

from eftflow.errors import InputError

__all__ = ["read_lhe_header", "check_lhe_events", "batch_weights", "weight_columns"]


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_lhe_header(path) -> dict:
    """Weight ids (``<initrwgt>``) and eftflow provenance (``<eftflow>`` JSON) of an LHE file.

    Returns ``{"weight_ids": [...], "provenance": {...}, "n_header_lines": int}``.
    """
    path = Path(path)
    if path.is_dir():
        what = "an event store" if (path / "zarr.json").is_file() else "a directory"
        raise InputError(
            f"is {what}, not an LHE file: the shower reads generator output (.lhe, .lhe.gz)",
            file=str(path),
        )
    if not path.is_file():
        raise InputError("LHE file does not exist", file=str(path))
    lines = []
    try:
        with _open_text(path) as fh:
            for i, line in enumerate(fh, start=1):
                lines.append(line)
                if line.strip().startswith("</init>"):
                    break
                if i > 1_000_000:
                    break
            else:
                raise InputError(
                    "no </init> block: truncated or not an LHE file",
                    file=str(path),
                    field=f"line {len(lines)}",
                )
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InputError(f"cannot read LHE header ({err})", file=str(path)) from None
    if not lines or "<LesHouchesEvents" not in "".join(lines[:5]):
        raise InputError(
            "not an LHE file (no <LesHouchesEvents> tag)", file=str(path), field="line 1"
        )
    text = "".join(lines)
    ids = re.findall(r"<weight\s+[^>]*?id\s*=\s*['\"]([^'\"]+)['\"]", text)
    prov = {}
    m = re.search(r"<eftflow>(.*?)</eftflow>", text, re.S)
    if m:
        body = m.group(1).strip()
        if body.startswith("<![CDATA["):
            body = body[len("<![CDATA[") : body.rfind("]]>")]
        try:
            prov = json.loads(body)
            prov = prov.get("provenance", prov) if isinstance(prov, dict) else {}
        except json.JSONDecodeError as err:
            raise InputError(
                f"malformed <eftflow> JSON ({err.msg})", file=str(path), field="header.eftflow"
            ) from None
    return {"weight_ids": ids, "provenance": prov, "n_header_lines": len(lines)}


def check_lhe_events(lhe: Path) -> float:
    """Read the whole LHE file once before Pythia does: truncation and malformed events.

    Pythia stops quietly at a truncated file (showering only the events before the cut) and
    does not check the weights of each event against ``<initrwgt>``; the LHE reader does
    (:class:`~eftflow.generate.lhe.LHEReader` raises an :class:`InputError` naming the file and
    line). Negative weights are allowed here (NLO samples are showered as they are).

    Returns
    -------
    float
        The factor that turns the weights as written into pb per event (Σ over the file = σ):
        1 for ``event_norm = sum``, 1 / (number of events) for MadGraph's ``event_norm =
        average``, where every event carries the full cross section (as the LHE reader does).
    """
    from eftflow.generate.lhe import LHEReader

    reader = LHEReader(lhe, normalize=None, negative_weights="allow")
    idwtup = reader.header.init.weighting_strategy
    if abs(int(idwtup)) != 4:
        # Pythia unweights ±1/±2 files itself and divides the <rwgt> weights of ±3 files by
        # XWGTUP: the weights it hands on would no longer be the cross sections per event
        raise InputError(
            f"IDWTUP = {idwtup}: the shower needs weighted events with IDWTUP = +4 or -4 (as "
            "MadGraph and the eftflow generators write), whose <rwgt> weights Pythia passes "
            "through unchanged",
            file=str(lhe),
            field="init.IDWTUP",
        )
    for _ in reader.iter_chunks():
        pass
    norm = reader.header.event_norm
    if norm == "sum":
        return 1.0
    if norm == "average":
        if reader.n_events_read == 0:
            raise InputError("event_norm = average but the file holds no events", file=str(lhe))
        return 1.0 / reader.n_events_read
    raise InputError(
        f"unsupported event_norm {norm!r}: expected 'average' or 'sum'",
        file=str(lhe),
        field="MGRunCard.event_norm",
    )


def batch_weights(batch, lhe: Path, n_before: int) -> np.ndarray:
    """The (n, n_weights) weights of a Pythia batch; an InputError if events differ in count."""
    import awkward as ak

    counts = np.asarray(ak.num(batch.info.weights, axis=1))
    if len(counts) and (counts != counts[0]).any():
        i = int(np.flatnonzero(counts != counts[0])[0])
        raise InputError(
            f"accepted event {n_before + i + 1} carries {counts[i]} weights, the ones before "
            f"{counts[0]}: every event must have one <wgt> per <initrwgt> weight",
            file=str(lhe), field="rwgt",
        )  # fmt: skip
    return ak.to_numpy(ak.to_regular(batch.info.weights, axis=1))


def weight_columns(info, benchmark_names, lhe: Path, n_columns: int, ids) -> np.ndarray:
    """Columns of the benchmarks in Pythia's per-event weights (``Weight``, then the LHE ids).

    Pythia names its weights ``Weight`` followed by the ``<initrwgt>`` ids in file order. Once a
    batch has reached the end of the file its info snapshot lists only ``Weight`` although the
    events still carry every weight; the names then come from the LHE header.
    """
    names = [info.weightNameByIndex(i) for i in range(info.numberOfWeights())]
    if n_columns == 1 + len(ids) and (
        len(names) != n_columns or any(b not in names for b in benchmark_names)
    ):  # (Pythia may also rename weights it recognises, e.g. scale variations)
        names = ["Weight", *ids]
    cols = []
    for b in benchmark_names:
        if b not in names:
            raise InputError(
                f"Pythia did not read a weight {b!r} from the events (it has {', '.join(names)})",
                file=str(lhe), field="rwgt",
            )  # fmt: skip
        cols.append(names.index(b))
    return np.asarray(cols)
