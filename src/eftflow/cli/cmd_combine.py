"""``eftflow combine-events``, ``eftflow export-madminer``, ``eftflow import-madminer``."""

from __future__ import annotations

import argparse

from eftflow.cli.common import (
    add_config_argument,
    fraction_below_one,
    non_negative_int,
    positive_int,
)

__all__ = ["register"]

DEFAULTS = {"validation_split": 0.2, "test_split": 0.2, "shuffle_block_mb": None}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "combine-events",
        help="combine event stores, shuffle with a seed, split train/validation/test",
        description=(
            "Combine event stores with the same setup, benchmarks and observables into one store, "
            "shuffled with a recorded seed (streaming: memory set by --memory-mb, not by the number "
            "of events) and split by index into train/validation/test partitions."
        ),
    )
    p.add_argument("inputs", nargs="+", help="event stores (*.zarr) to combine")
    p.add_argument("-o", "--output", required=True, help="combined event store to write (*.zarr)")
    p.add_argument(
        "--setup", default=None, help="setup file: check benchmarks, record its fingerprint"
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        help="shuffle seed (default: config seed, else 0)",
    )
    p.add_argument(
        "--validation-split", type=float, default=None, help="validation fraction (default 0.2)"
    )
    p.add_argument("--test-split", type=float, default=None, help="test fraction (default 0.2)")
    p.add_argument(
        "--memory-mb",
        type=positive_int,
        default=2000,
        help="memory this job may use; the shuffle's buffers take at most about half of it",
    )
    p.add_argument(
        "--block-events",
        type=positive_int,
        default=None,
        help="events per shuffle block, instead of the size --memory-mb allows: the output for "
        "a seed then does not depend on the memory given (the block count is recorded as "
        "shuffle_blocks)",
    )
    p.add_argument(
        "--tmp-dir",
        default=None,
        help="where the shuffle's block files go (default: next to output)",
    )
    p.add_argument(
        "--max-failed-fraction",
        type=fraction_below_one,
        default=0.0,
        help="tolerated fraction of inputs that are failure markers of lost generator jobs "
        "(generation.max_failed_fraction); they are left out and recorded as `lost_jobs`",
    )
    add_config_argument(p)
    p.set_defaults(handler=run_combine)

    p = sub.add_parser(
        "export-madminer",
        help="write an event store as a MadMiner HDF5 event file",
        description=(
            "Copy the setup file and add MadMiner's samples/*, sample_summary/* and observables/* "
            "datasets from the event store, so that madminer's SampleAugmenter, FisherInformation, "
            "etc. read it."
        ),
    )
    p.add_argument("store", help="event store (*.zarr), preferably combined and shuffled")
    p.add_argument(
        "--setup", required=True, help="setup file (MadMiner layout) the store was made with"
    )
    p.add_argument("output", help="MadMiner event file to write (*.h5)")
    p.set_defaults(handler=run_export)

    p = sub.add_parser(
        "import-madminer",
        help="read a MadMiner HDF5 event file into an event store",
        description="Convert a MadMiner event file (samples/*, sample_summary/*) into an event store.",
    )
    p.add_argument("input", help="MadMiner event file (*.h5)")
    p.add_argument("output", help="event store to write (*.zarr)")
    p.add_argument(
        "--chunk-size", type=positive_int, default=100_000, help="events per chunk of the store"
    )
    p.add_argument(
        "--validation-split",
        type=float,
        default=0.2,
        help="fraction of events (by index) in the validation partition, as MadMiner's "
        "SampleAugmenter splits the file (default: 0.2)",
    )
    p.add_argument(
        "--test-split",
        type=float,
        default=0.2,
        help="fraction of events (by index, at the end) in the test partition (default: 0.2); "
        "0 and 0 put every event in train",
    )
    p.set_defaults(handler=run_import)


def _combine_settings(args) -> tuple[int, dict]:
    from eftflow.cli.common import load_stage_config
    from eftflow.errors import ConfigError

    cfg = load_stage_config(args.config) if args.config else {}
    section = dict(DEFAULTS)
    extra = cfg.get("combine") or {}
    if not isinstance(extra, dict):
        raise ConfigError("must be a mapping", field="combine")
    unknown = sorted(set(extra) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; allowed: {sorted(DEFAULTS)}", field="combine")
    section.update(extra)
    if args.validation_split is not None:
        section["validation_split"] = args.validation_split
    if args.test_split is not None:
        section["test_split"] = args.test_split
    seed = args.seed if args.seed is not None else int(cfg.get("seed", 0))
    return seed, section


def run_combine(args) -> int:
    import logging

    from eftflow.store.combine import combine_events

    seed, section = _combine_settings(args)
    memory_mb = args.memory_mb / 2
    inputs, k_factors, lost = _drop_lost_jobs(args.inputs, args.max_failed_fraction)
    info = combine_events(
        inputs,
        args.output,
        k_factors=k_factors,
        seed=seed,
        validation_split=float(section["validation_split"]),
        test_split=float(section["test_split"]),
        memory_mb=memory_mb,
        block_mb=section.get("shuffle_block_mb"),
        block_events=args.block_events,
        setup=args.setup,
        tmp_dir=args.tmp_dir,
    )
    logging.getLogger("eftflow.combine").info(
        "%d events, partitions %s, signal events %s, background %d, %d shuffle block(s), %.1f s",
        info["n_events"], info["partitions"], info["signal_events"], info["background_events"],
        info["n_blocks"], info["seconds"],
    )  # fmt: skip
    if lost:
        from eftflow.store.failed import record_lost_jobs

        record_lost_jobs(args.output, lost)
    return 0


def _drop_lost_jobs(inputs, tolerance: float):
    """(inputs without failure markers, k-factors or None, lost-jobs record or None).

    Each generator job's weights sum to the sample's cross section, so the jobs of one sample get
    the k-factor 1/n_jobs (1/n_surviving when jobs were lost): the combined weights of a sample
    then sum to its σ, estimated from all its events. The sample of an input is the one its
    generator recorded in the provenance chain; an input without one is a sample of its own
    (k-factor 1).
    """
    from collections import Counter

    from eftflow.errors import InputError
    from eftflow.store.failed import read_failure_marker

    records = {str(p): read_failure_marker(p) for p in inputs}
    lost = [dict(r, path=p) for p, r in records.items() if r is not None]
    sample = {
        str(p): (r.get("sample") if r is not None else _recorded_sample(p)) or f"input {str(p)}"
        for p, r in zip(inputs, records.values())
    }
    if not lost:
        per_sample = Counter(sample[str(p)] for p in inputs)
        return list(inputs), [1.0 / per_sample[sample[str(p)]] for p in inputs], None
    fraction = len(lost) / len(inputs)
    jobs = ", ".join(f"{r.get('sample')}/{r.get('job')}" for r in lost)
    if fraction > tolerance:
        raise InputError(
            f"{len(lost)} of {len(inputs)} generator jobs failed ({jobs}): a fraction of "
            f"{fraction:.3g}, more than the tolerated {tolerance:g}; first reason: "
            f"{lost[0].get('reason')}",
            file=lost[0]["path"],
            field="generation.max_failed_fraction",
        )
    kept = [p for p, r in records.items() if r is None]
    if not kept:  # pragma: no cover - a fraction of 1 is refused by the schema
        raise InputError("every generator job failed", field="generation.max_failed_fraction")
    planned = Counter(sample[str(p)] for p in inputs)
    surviving = Counter(sample[p] for p in kept)
    factors = {s: 1.0 / surviving[s] for s in surviving}
    k_factors = [factors[sample[p]] for p in kept]
    record = {
        "n_inputs": len(inputs),
        "n_lost": len(lost),
        "fraction": fraction,
        "tolerance": tolerance,
        "samples_lost_entirely": sorted(set(planned) - set(surviving)),
        "k_factors": factors,
        "jobs": [
            {k: r.get(k) for k in ("sample", "job", "failed_stage", "reason", "path", "attempt")}
            for r in lost
        ],
    }
    import logging

    hit = [s for s in planned if surviving[s] < planned[s]]
    scaled = "; ".join(
        f"{s}: {surviving[s]} of {planned[s]} jobs kept, their weights × {planned[s] / surviving[s]:g}"
        if surviving[s] else f"{s}: all {planned[s]} jobs lost"
        for s in hit
    )  # fmt: skip
    logging.getLogger("eftflow.combine").warning(
        "left out %d of %d inputs from failed generator jobs (%s; tolerated fraction %g); %s",
        len(lost), len(inputs), jobs, tolerance, scaled,
    )  # fmt: skip
    return kept, k_factors, record


def _recorded_sample(path) -> str | None:
    """The generator sample recorded in an event store's provenance chain (None if there is none)."""
    from eftflow.store.events import EventStore

    todo = [EventStore(path).provenance]
    while todo:  # breadth first: the nearest record wins
        node = todo.pop(0)
        if isinstance(node, dict):
            if isinstance(node.get("sample"), str):
                return node["sample"]
            todo.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            todo.extend(v for v in node if isinstance(v, dict | list))
    return None


def run_export(args) -> int:
    from eftflow.store.madminer_io import export_madminer

    export_madminer(args.store, args.setup, args.output)
    return 0


def run_import(args) -> int:
    from eftflow.store.madminer_io import import_madminer

    import_madminer(
        args.input,
        args.output,
        chunk_size=args.chunk_size,
        validation_split=args.validation_split,
        test_split=args.test_split,
    )
    return 0
