"""The streaming shuffle behind :func:`eftflow.store.combine.combine_events`.

Building blocks: loading event-store columns straight into arrays (:func:`load_columns`); writing
a permutation of rows in memory, each column of each output chunk gathered, compressed and written
by one of several threads (:func:`write_permuted`); and, for data larger than the memory budget,
the scatter–shuffle (Rao–Sandelius) through temporary block files (:func:`scatter_shuffle`, whose
blocks are written in pieces from a background thread by :func:`write_gathered` and
:class:`BackgroundWriter`): every event goes to a block drawn uniformly at random, each block is
then permuted uniformly, which together is a uniform random permutation.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from eftflow.errors import InputError
from eftflow.store.events import EventStore, EventStoreWriter, check_finite, wait_all

log = logging.getLogger(__name__)

__all__ = [
    "count_sampling",
    "load_columns",
    "read_into",
    "empty_columns",
    "BackgroundWriter",
    "write_permuted",
    "write_gathered",
    "RowLayout",
    "prefetch",
    "scatter_shuffle",
    "rows_gather",
    "BlockDraws",
    "as_records",
    "READ_THREADS",
]


def count_sampling(
    sampling_benchmark: np.ndarray, n_benchmarks: int, *, file: str | None = None
) -> np.ndarray:
    """Counts ``[background, n_0, …, n_{B-1}]`` of sampling ids −1, 0, …, B−1 (bad ids: InputError)."""
    s = np.asarray(sampling_benchmark)
    if s.size and (s.min() < -1 or s.max() >= n_benchmarks):
        bad = s[(s < -1) | (s >= n_benchmarks)][0]
        raise InputError(
            f"sampling benchmark id {int(bad)} outside [-1, {n_benchmarks - 1}]",
            file=file,
            field="sampling_benchmark",
        )
    return np.bincount(s + 1, minlength=n_benchmarks + 1)


#: input chunks read per task when loading inputs (zarr decodes the chunks of one call
#: concurrently; more in flight only costs memory)
READ_CHUNKS = 4
#: threads reading input columns concurrently (decompression releases the GIL)
READ_THREADS = 2


def read_into(store: EventStore, column: str, start: int, stop: int, out: np.ndarray) -> None:
    """Read rows [start, stop) of one column of ``store`` straight into ``out`` (contiguous)."""
    store.read_into(column, start, stop, out)


def empty_columns(widths: dict[str, int], n: int) -> dict[str, np.ndarray]:
    return {
        c: np.empty(n, np.int64) if c == "sampling_benchmark" else np.empty((n, w), np.float64)
        for c, w in widths.items()
    }


def load_columns(
    pool, parts: list[tuple[EventStore, int, int, float]], widths, counts, n_b
) -> dict[str, np.ndarray]:
    """Read rows [i0, i1) of each (store, i0, i1, k) into one set of columns, concurrently.

    The tasks that read them check and count the sampling ids (into ``counts``) and multiply
    the weights by ``k``.
    """

    def read(s: EventStore, c: str, j0: int, j1: int, k: float, out: np.ndarray):
        read_into(s, c, j0, j1, out)
        if c == "sampling_benchmark":
            return count_sampling(out, n_b, file=str(s.path))
        if c in ("weights", "nuisance_weights"):
            check_finite(out, file=s.path, field=c, start=j0)
            if k != 1.0:
                out *= k
        return None

    n = sum(i1 - i0 for _, i0, i1, _ in parts)
    cols = empty_columns(widths, n)
    futures, pos = [], 0
    for s, i0, i1, k in parts:
        step = READ_CHUNKS * s.chunk_size
        for j0 in range(i0, i1, step):
            j1 = min(j0 + step, i1)
            a, b = pos + j0 - i0, pos + j1 - i0
            futures += [pool.submit(read, s, c, j0, j1, k, cols[c][a:b]) for c in widths]
        pos += i1 - i0
    for found in wait_all(futures):
        if found is not None:
            counts += found
    return cols


class BackgroundWriter:
    """Run ``writer.append`` in one background thread (order kept, at most ``depth`` pending).

    Compression and file writes of one piece overlap with gathering the next one; the writer
    compresses the chunks of a piece concurrently in its own threads and keeps rows that do not
    fill a chunk until the next piece.
    """

    def __init__(self, writer: EventStoreWriter, depth: int = 2):
        from concurrent.futures import ThreadPoolExecutor

        self.writer, self.depth = writer, depth
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="eftflow-write")
        self.pending: list = []

    def add(self, cols: dict) -> None:
        self.wait(self.depth - 1)
        self.pending.append(self.pool.submit(self.writer.append, **cols))

    def wait(self, max_pending: int = 0) -> None:
        """Block until at most ``max_pending`` writes are outstanding."""
        while len(self.pending) > max_pending:
            self.pending.pop(0).result()

    def close(self) -> None:
        """Wait for pending writes (the writer writes the last partial chunk when it closes)."""
        try:
            self.wait(0)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop pending writes (after an error; the output is discarded anyway)."""
        for f in self.pending:
            f.cancel()
        self.pending = []
        self.pool.shutdown(wait=True)


def as_records(a: np.ndarray) -> np.ndarray:
    """A C-contiguous (n, w) array as n opaque records of w items (same memory).

    ``np.take`` of whole records is several times faster than ``np.take(..., axis=0)`` of rows.
    """
    w = int(np.prod(a.shape[1:], dtype=np.int64))
    return a.reshape(len(a), w).view(np.dtype((np.void, a.itemsize * w))).reshape(-1)


def write_permuted(cols: dict, perm: np.ndarray, writer: EventStoreWriter, pool) -> None:
    """Write the rows ``perm`` of the columns ``cols`` as the chunks of ``writer``.

    One task of ``pool`` per chunk and column, the largest columns first: it gathers the rows of
    that column chunk into a buffer of its own thread (reused from task to task: first touch of
    new memory costs as much as the gather), then compresses and writes it
    (:meth:`EventStoreWriter.write_chunk`); ``np.take`` and Blosc release the GIL, so the threads
    work in parallel and no permuted copy of a whole column is ever made.
    """
    import threading

    records = {c: as_records(v) for c, v in cols.items()}
    chunk = writer.chunk_size
    nbytes = min(chunk, len(perm)) * max(r.dtype.itemsize for r in records.values())
    local = threading.local()

    def job(k: int, c: str) -> None:
        idx = perm[k * chunk : (k + 1) * chunk]
        if getattr(local, "buf", None) is None:
            local.buf = np.empty(nbytes, np.uint8)
        v = records[c]
        dst = local.buf[: len(idx) * v.dtype.itemsize].view(v.dtype)
        np.take(v, idx, out=dst, mode="clip")
        writer.write_chunk(k, {c: dst.view(cols[c].dtype).reshape(len(idx), *cols[c].shape[1:])})

    order = sorted(records, key=lambda c: -records[c].dtype.itemsize)
    n_chunks = -(-len(perm) // chunk)
    wait_all([pool.submit(job, k, c) for k in range(n_chunks) for c in order])


def write_gathered(gather, widths: dict, perm: np.ndarray, sink: BackgroundWriter, piece: int):
    """Append ``gather(perm[i:i+piece], buffers)`` piece by piece, gathering one piece while the
    last one is written.

    The pieces are gathered into ``sink.depth + 1`` reused buffer sets, not fresh arrays (first
    touch of new memory costs as much as the gather). Reusing set ``k mod (depth + 1)`` is safe:
    ``sink.add`` returns with at most ``depth`` writes pending, so the piece that used it last is
    written.
    """
    n_buf = sink.depth + 1
    bufs: list[dict] = []
    for k, i in enumerate(range(0, len(perm), piece)):
        if len(bufs) < n_buf:
            bufs.append(empty_columns(widths, min(piece, len(perm))))
        sink.add(gather(perm[i : i + piece], bufs[k % n_buf]))


class RowLayout:
    """Packs an event's columns into one row of 8-byte fields (int64 ids kept bit for bit).

    The on-disk blocks of the many-block shuffle hold such rows: one record per event.
    """

    def __init__(self, widths: dict[str, int]):
        self.widths = dict(widths)
        self.columns, self.slices, k = list(widths), {}, 0
        for c, w in widths.items():
            self.slices[c] = slice(k, k + w)
            k += w
        self.width = k
        self.void = np.dtype((np.void, 8 * k))

    def pack(self, cols: dict) -> np.ndarray:
        n = len(cols["sampling_benchmark"])
        out = np.empty((n, self.width), np.float64)
        for c in self.columns:
            v = cols[c]
            if c == "sampling_benchmark":
                out[:, self.slices[c]] = v.view(np.float64)[:, None]
            else:
                out[:, self.slices[c]] = v
        return out.view(self.void).reshape(n)

    def unpack_into(self, rows: np.ndarray, out: dict) -> dict:
        """Columns of ``rows`` written into the buffers ``out`` (views of their first rows)."""
        n = len(rows)
        mat = rows.view(np.float64).reshape(n, self.width)
        res = {}
        for c in self.columns:
            sl = self.slices[c]
            if c == "sampling_benchmark":
                dst = out[c][:n]
                dst.view(np.float64)[:] = mat[:, sl.start]
            else:
                dst = out[c][:n]
                dst[...] = mat[:, sl]
            res[c] = dst
        return res


def prefetch(iterator):
    """Iterate with the next item produced in a background thread (overlaps reading and work)."""
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="eftflow-prefetch") as pool:
        fut = pool.submit(next, iterator, end)
        while True:
            item = fut.result()
            if item is end:
                return
            fut = pool.submit(next, iterator, end)
            yield item


def scatter_shuffle(
    chunks, sink, layout: RowLayout, n_blocks, rng, output: Path, tmp_dir, piece, n_total=None
) -> None:
    """Pass 1: send events to random blocks on disk; pass 2: permute each block, append it.

    Every event goes to a block drawn uniformly at random, independently, and each block is then
    permuted uniformly: together a uniform random permutation (Rao–Sandelius). Progress is shown
    per pass (:mod:`eftflow.progress`; ``n_total`` events in all, if known).
    """
    import os

    from eftflow.progress import progress
    from eftflow.store.atomic import remove_stale, stale_prefix

    parent = Path(tmp_dir) if tmp_dir is not None else output.parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix = stale_prefix(output, "shuffle")
    remove_stale(parent, prefix)  # block files of killed runs (they hold a copy of every event)
    draws = BlockDraws(rng, n_blocks)
    with tempfile.TemporaryDirectory(dir=parent, prefix=f"{prefix}{os.getpid()}-") as tmp:
        tmp = Path(tmp)
        sizes = np.zeros(n_blocks, np.int64)
        handles = [open(tmp / f"block{k}.bin", "wb") for k in range(n_blocks)]  # noqa: SIM115
        bar = progress(n_total, "combine_events: scatter to blocks", logger=log)
        try:
            for c in chunks:
                n = len(c["sampling_benchmark"])
                rows = layout.pack(c)
                del c
                dest = draws.take(n)
                order = np.argsort(dest, kind="stable")
                rows = np.take(rows, order, mode="clip")
                edges = np.concatenate(([0], np.cumsum(np.bincount(dest, minlength=n_blocks))))
                for k in range(n_blocks):
                    if edges[k + 1] > edges[k]:
                        rows[edges[k] : edges[k + 1]].tofile(handles[k])
                sizes += np.diff(edges)
                bar.update(n)
        finally:
            bar.close()
            for h in handles:
                h.close()
        rows_buf = np.empty(min(piece, int(sizes.max())), layout.void)
        bar = progress(int(sizes.sum()), "combine_events: shuffle blocks", logger=log)
        for k in range(n_blocks):
            path = tmp / f"block{k}.bin"
            block = np.fromfile(path, dtype=layout.void)
            path.unlink()
            gather = rows_gather(block, rows_buf, layout)
            write_gathered(gather, layout.widths, rng.permutation(int(sizes[k])), sink, piece)
            del block, gather
            bar.update(int(sizes[k]))
        bar.close()


class BlockDraws:
    """The block of each event, drawn uniformly from ``n_blocks``, in fixed batches.

    :meth:`take` returns the next ``n`` draws of one stream drawn ``batch`` at a time, so the
    blocks (and with them the whole shuffle) depend on the seed and the number of blocks, not on
    how many events each read brings (which depends on the memory budget).
    """

    def __init__(self, rng, n_blocks: int, batch: int = 1 << 16):
        self.rng, self.n_blocks, self.batch = rng, int(n_blocks), int(batch)
        self.dtype = np.uint8 if n_blocks <= 256 else (np.uint16 if n_blocks <= 65536 else np.int64)
        self.buf = np.empty(0, self.dtype)
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        parts, need = [], int(n)
        while need > 0:
            if self.pos == len(self.buf):
                self.buf = self.rng.integers(0, self.n_blocks, self.batch, dtype=self.dtype)
                self.pos = 0
            k = min(need, len(self.buf) - self.pos)
            parts.append(self.buf[self.pos : self.pos + k])
            self.pos += k
            need -= k
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.empty(0, self.dtype)


def rows_gather(block: np.ndarray, rows_buf: np.ndarray, layout: RowLayout):
    """``gather(idx, buf)`` for :func:`write_gathered` over a block of packed rows.

    One random access per event (whole rows), then a sequential unpack into the column buffers;
    ``rows_buf`` is free again when ``gather`` returns.
    """

    def gather(idx, buf):
        rows = np.take(block, idx, out=rows_buf[: len(idx)], mode="clip")
        return layout.unpack_into(rows, buf)

    return gather
