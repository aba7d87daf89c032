"""Helpers for the benchmark scripts: a markdown table printer and the JSON writer."""

from __future__ import annotations

import json
import platform
import resource
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_results(name: str, rows: list[dict], *, meta: dict | None = None) -> Path:
    """Print ``rows`` as a markdown table and write them (with machine info) to results/<name>.json."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(_fmt(r.get(k, "")) for k in keys) + " |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    info = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "processor": platform.processor(),
    }
    out.write_text(
        json.dumps({"benchmark": name, "meta": {**info, **(meta or {})}, "rows": rows}, indent=2)
    )
    print(f"\nwritten: {out}")
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
