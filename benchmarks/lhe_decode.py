"""LHE decode throughput into columnar arrays: eftflow vs pylhe vs MadMiner, plain and gzip.

Writes MadGraph-style events (e+e- → μ+μ-, 4 particles, 4 reweighting weights, MadGraph's exact
line formats, ~850 bytes/event) and measures events per CPU-second (= events/s/core; CPU time,
so that other load on the machine distorts the figure less than wall time would) for:

* ``eftflow`` — :class:`eftflow.generate.lhe.LHEReader`, every column and every weight (gzip
  inflated with ISA-L when ``isal`` is installed, as recorded in the JSON);
* ``eftflow, stdlib zlib`` — the same with the standard-library fallback (gzip only);
* ``eftflow, first file in a new process`` — the first read in a fresh interpreter (imports not
  counted; CPU time of the reading thread): the memory allocator's pools are still growing, so
  this is the cold-start figure;
* ``pylhe to_awkward`` — ``pylhe.to_awkward(pylhe.LHEFile.fromfile(f).events)`` (pylhe 2.x);
* ``pylhe iterate`` — iterating ``pylhe.LHEFile.fromfile(f).events`` (Python objects, no arrays);
* ``madminer`` — ``madminer.utils.interfaces.lhe.parse_lhe_file`` (on a small file only: slow);
* two reference rows, the ceiling for a parser driven from Python on the same machine:
  ``read + split into events`` (read the file, ``bytes.split(b"</event>")``) and
  ``read + float() of all tokens`` (read, ``bytes.split()``, ``np.array(tokens, float)`` on every
  token: what any token-based decoder must at least do).

Each row is the best of ``--repeat`` runs after one untimed warm-up run (imports, layout caches,
the allocator's first growth) and records ``os.getloadavg()`` when it was measured (other jobs on
the machine inflate both times).

Run: ``python benchmarks/lhe_decode.py [--n 20000]``; prints a markdown table and writes
``benchmarks/results/lhe_decode.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

IDS = ("cll1221_p1", "cpe_p1", "c3pl1_m1", "cll1221_p1_cpe_p1")
HEADER = """<LesHouchesEvents version="3.0">
<header>
<MGRunCard>
<![CDATA[
  {n} = nevents ! Number of unweighted events requested
  sum =  event_norm       ! average/sum. Normalization of the weight in the LHEF
]]>
</MGRunCard>
<initrwgt>
<weightgroup name='mg_reweighting' weight_name_strategy='includeIdInWeightName'>
{weights}</weightgroup>
</initrwgt>
</header>
<init>
-11 11 5.000000e+02 5.000000e+02 0 0 0 0 -4 1
1.103110e-01 2.600000e-04 1.103110e-01 1
</init>
"""
PART = "%9d %2d %4d %4d %4d %4d %+.10e %+.10e %+.10e %.10e %.10e %.4e %.4e\n"


def make_file(path: Path, n: int, seed: int = 1) -> int:
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(1 - c * c)
    px, py, pz = 500 * s * np.cos(phi), 500 * s * np.sin(phi), 500 * c
    hel = rng.choice([-1.0, 1.0], n)
    w = 0.110311 / n
    rw = w * rng.uniform(0.9, 1.2, (n, len(IDS)))
    weights = "".join(
        f"<weight id='{k}'>set param_card dim6 1 1.0 # orig: 0.0\n</weight>\n" for k in IDS
    )
    out = [HEADER.format(n=n, weights=weights)]
    for i in range(n):
        out.append("<event>\n")
        out.append(" 4      1 %+.7e %.8e %.8e %.8e\n" % (w, 1000.0, 7.81859e-3, 8.705754e-2))  # noqa: UP031
        out.append(PART % (-11, -1, 0, 0, 0, 0, 0.0, 0.0, 500.0, 500.0, 0.0, 0.0, hel[i]))
        out.append(PART % (11, -1, 0, 0, 0, 0, -0.0, -0.0, -500.0, 500.0, 0.0, 0.0, -hel[i]))
        out.append(PART % (-13, 1, 1, 2, 0, 0, -px[i], -py[i], pz[i], 500.0, 0.0, 0.0, hel[i]))
        out.append(PART % (13, 1, 1, 2, 0, 0, px[i], py[i], -pz[i], 500.0, 0.0, 0.0, -hel[i]))
        out.append("<rwgt>\n")
        out.extend("<wgt id='%s'> %+.7e </wgt>\n" % (k, rw[i, j]) for j, k in enumerate(IDS))  # noqa: UP031
        out.append("</rwgt>\n</event>\n")
    out.append("</LesHouchesEvents>\n")
    text = "".join(out)
    path.write_text(text)
    with gzip.open(str(path) + ".gz", "wt", compresslevel=6) as fh:
        fh.write(text)
    return len(text.encode()) - len(out[0].encode())


def timed(fn, repeat: int = 3) -> tuple[float, float]:
    """Best (cpu seconds, wall seconds) over ``repeat`` runs, after one warm-up run."""
    fn()
    best = (np.inf, np.inf)
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        best = min(best, (time.process_time() - c0, time.perf_counter() - w0))
    return best


def ours(path):
    from eftflow.generate.lhe import LHEReader

    n = 0
    for chunk in LHEReader(path, benchmarks=list(IDS)).iter_chunks():
        n += chunk.n_events
    return n


_COLD = """
import sys, time
from eftflow.generate.lhe import LHEReader
c0, w0 = time.thread_time(), time.perf_counter()
for chunk in LHEReader(sys.argv[1]).iter_chunks():
    pass
print(time.thread_time() - c0, time.perf_counter() - w0)
"""


def ours_cold(path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the first read in a new interpreter. CPU time of the
    reading thread: a fresh numpy's BLAS worker threads spin for a while after start-up and
    would be counted by the process's CPU time."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _COLD, str(path)], capture_output=True, text=True, check=True
    )
    cpu, wall = out.stdout.split()[-2:]
    return float(cpu), float(wall)


def ours_zlib(path):
    import eftflow.generate.lhe as lhe

    saved = getattr(lhe, "_igzip", None)
    lhe._igzip = None
    try:
        return ours(path)
    finally:
        lhe._igzip = saved


def _raw(path) -> bytes:
    from eftflow.generate.lhe import _open_stream

    with _open_stream(Path(path)) as fh:
        return b"".join(iter(lambda: fh.read(1 << 24), b""))


def ref_split(path):
    return len(_raw(path).split(b"</event>")) - 1


def ref_tokens(path):
    data = _raw(path)
    body = data[data.index(b"<event>") :]
    toks = [t for t in body.split() if t[:1] not in (b"<", b"i")]  # tags and id='...' attributes
    return np.array(toks, dtype=np.float64).size


def pylhe_awkward(path):
    import pylhe

    arr = pylhe.to_awkward(pylhe.LHEFile.fromfile(str(path)).events)
    return len(arr)


def pylhe_iterate(path):
    import pylhe

    return sum(1 for _ in pylhe.LHEFile.fromfile(str(path)).events)


def madminer_reader(path):
    import logging

    from madminer.models.readers import Observable
    from madminer.utils.interfaces.lhe import parse_lhe_file

    logging.getLogger("madminer").setLevel(logging.ERROR)
    obs = {"e_mu": Observable(name="e_mu", val_expression="mu[0].e", val_default=0.0)}
    res = parse_lhe_file(
        str(path),
        sampling_benchmark="cll1221_p1",
        observables=obs,
        benchmark_names=list(IDS),
        systematics_dict={},
    )
    return len(res[0]["e_mu"]) if isinstance(res[0], dict) else len(res[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--n-madminer", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big.lhe", Path(tmp) / "small.lhe"
        nbytes = make_file(big, args.n)
        make_file(small, args.n_madminer)
        candidates = [
            ("eftflow", ours, big, args.n),
            ("eftflow, stdlib zlib", ours_zlib, big, args.n),
            ("eftflow, first file in a new process", ours_cold, big, args.n),
            ("pylhe to_awkward", pylhe_awkward, big, args.n),
            ("pylhe iterate", pylhe_iterate, big, args.n),
            ("madminer", madminer_reader, small, args.n_madminer),
            ("reference: read + split into events", ref_split, big, args.n),
            ("reference: read + float() of all tokens", ref_tokens, big, args.n),
        ]
        for name, fn, path, n in candidates:
            for kind, p in (("plain", path), ("gzip", Path(str(path) + ".gz"))):
                if name == "eftflow, stdlib zlib" and kind == "plain":
                    continue
                try:
                    if name == "eftflow, first file in a new process":  # its own CPU time
                        cpu, wall = min(fn(p) for _ in range(args.repeat))
                    elif name == "madminer":  # slow: one run, no warm-up
                        c0, w0 = time.process_time(), time.perf_counter()
                        fn(p)
                        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                    else:
                        cpu, wall = timed(lambda fn=fn, p=p: fn(p), args.repeat)
                    rows.append(
                        {
                            "reader": name,
                            "file": kind,
                            "events": n,
                            "events_per_cpu_s": n / cpu,
                            "events_per_wall_s": n / wall,
                            "loadavg_1m": os.getloadavg()[0],
                        }
                    )
                except Exception as err:  # a missing optional reader must not stop the benchmark
                    rows.append(
                        {
                            "reader": name,
                            "file": kind,
                            "events": n,
                            "error": f"{type(err).__name__}: {err}",
                        }
                    )
    from eftflow.generate import lhe

    inflate = "isal (ISA-L)" if getattr(lhe, "_igzip", None) is not None else "zlib"
    print(
        f"LHE decode, {args.n} MadGraph-style events, {nbytes / args.n:.0f} bytes/event, "
        f"eftflow gzip inflate: {inflate}\n"
    )
    print("| reader | file | events | events/s/core (CPU) | events/s (wall) | load avg |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['reader']} | {r['file']} | {r['events']} | n/a ({r['error'][:60]}) | |")
        else:
            print(
                f"| {r['reader']} | {r['file']} | {r['events']} | {r['events_per_cpu_s']:,.0f} | {r['events_per_wall_s']:,.0f} | {r['loadavg_1m']:.1f} |"
            )
    out = Path(__file__).parent / "results" / "lhe_decode.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "n_events": args.n,
                "bytes_per_event": nbytes / args.n,
                "machine": platform.processor() or platform.machine(),
                "eftflow_gzip_inflate": inflate,
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
