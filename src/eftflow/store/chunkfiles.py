"""Chunk files of event-store arrays read and written directly, without zarr's async layer.

The event stores (:mod:`eftflow.store.events`) use one zarr v3 layout: regular chunks along the
events, each chunk holding whole rows; codecs ``bytes`` (little-endian) then ``blosc``; ``default``
chunk keys with "/" (``c/<k>`` for 1-d arrays, ``c/<k>/0`` for 2-d); no storage transformers.
For that layout a chunk is one blosc frame of the chunk's rows, edge chunks padded with the fill
value. Reading (:class:`ChunkFiles`) decompresses each frame straight into the caller's array;
writing (:class:`ChunkEncoder`) compresses a block of rows into the frame zarr would write. Both
skip zarr's per-call machinery (an event loop in another thread, buffer wrappers, a task per
chunk), which costs about as much as the decompression itself, and both release the GIL while
(de)compressing, so several threads work in parallel. The metadata (``zarr.json`` of the
group and of each array) is read and written directly too (:func:`array_metadata`,
:func:`group_metadata`, :func:`write_metadata`, :func:`read_metadata`): the same JSON documents,
byte for byte, that zarr writes for these arrays (a test compares them with zarr's own), without
the ~5 ms per store that zarr's machinery costs to open or create one. :meth:`ChunkFiles.open`
returns ``None`` for any other layout, and callers then go through zarr.
"""

from __future__ import annotations

import json
import mmap
import os
import sys
import threading
from pathlib import Path

import numpy as np

__all__ = [
    "ChunkFiles",
    "ChunkEncoder",
    "BLOSC_CNAME",
    "BLOSC_CLEVEL",
    "StoreArray",
    "array_metadata",
    "group_metadata",
    "read_metadata",
    "write_metadata",
]

#: the event stores' compressor: Blosc LZ4, level 5, byte shuffle (fast; float64 event data
#: compresses little, sampling ids and padding a lot)
BLOSC_CNAME = "lz4"
BLOSC_CLEVEL = 5

_DTYPES = ("float64", "float32", "int64", "int32", "int16", "int8", "uint8", "bool")


def _blosc_config(typesize: int) -> dict:
    """The event stores' Blosc codec configuration as zarr records it."""
    return {
        "typesize": int(typesize),
        "cname": BLOSC_CNAME,
        "clevel": BLOSC_CLEVEL,
        "shuffle": "shuffle",
        "blocksize": 0,
    }


def _bytes_codec(dtype: np.dtype) -> dict:
    """zarr's ``bytes`` codec entry: little-endian, no endianness for one-byte types."""
    if dtype.itemsize == 1:
        return {"name": "bytes"}
    return {"name": "bytes", "configuration": {"endian": "little"}}


def array_metadata(shape: tuple[int, ...], rows: int, dtype) -> dict:
    """``zarr.json`` of an array in the standard layout: ``shape``, ``rows`` per chunk (whole
    rows), little-endian ``bytes`` then the stores' Blosc codec, fill value 0."""
    dtype = np.dtype(dtype)
    if dtype.name not in _DTYPES:
        raise ValueError(f"unsupported data type {dtype}")
    chunks = [int(rows)] + [max(int(s), 1) for s in shape[1:]]
    fill = False if dtype.kind == "b" else (0.0 if dtype.kind == "f" else 0)
    return {
        "shape": [int(s) for s in shape],
        "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": [
            _bytes_codec(dtype),
            {"name": "blosc", "configuration": _blosc_config(dtype.itemsize)},
        ],
        "attributes": {},
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    }


def group_metadata(attributes: dict) -> dict:
    """``zarr.json`` of a zarr v3 group with these attributes."""
    return {"attributes": attributes, "zarr_format": 3, "node_type": "group"}


def write_metadata(directory: str | os.PathLike, meta: dict) -> None:
    """Write ``directory/zarr.json`` as zarr does (2-space indent; NaN allowed in attributes)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "zarr.json").write_bytes(json.dumps(meta, indent=2, allow_nan=True).encode())


def read_metadata(directory: str | os.PathLike) -> dict | None:
    """The ``zarr.json`` document of ``directory`` as a dict, or None (missing or not JSON)."""
    try:
        meta = json.loads((Path(directory) / "zarr.json").read_bytes())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _layout(meta: dict) -> tuple[tuple[int, ...], int, str, float | int | bool] | None:
    """``(shape, rows per chunk, dtype, fill)`` if ``meta`` is the standard layout, else None."""
    try:
        codecs = meta["codecs"]
        shape = tuple(int(s) for s in meta["shape"])
        chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
        ok = (
            sys.byteorder == "little"
            and meta.get("zarr_format") == 3
            and meta.get("node_type") == "array"
            and meta["chunk_grid"].get("name") == "regular"
            and meta.get("chunk_key_encoding")
            == {"name": "default", "configuration": {"separator": "/"}}
            and not meta.get("storage_transformers")
            and len(codecs) == 2
            and meta.get("data_type") in _DTYPES
            and codecs[0] == _bytes_codec(np.dtype(meta["data_type"]))
            and codecs[1].get("name") == "blosc"
            and len(shape) in (1, 2)
            and len(chunks) == len(shape)
            and int(chunks[0]) >= 1
            and (len(shape) == 1 or chunks[1] == shape[1])
            and isinstance(meta.get("fill_value"), int | float | bool)
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        return None
    if not ok:
        return None
    return shape, int(chunks[0]), meta["data_type"], meta["fill_value"]


#: per-thread buffer for chunks read in part (reused: first touch of new memory costs more than
#: the decompression), kept only up to this size
_SCRATCH_KEEP = 16 * 2**20
_local = threading.local()


def _scratch(nbytes: int, slot: str = "read") -> np.ndarray:
    """``nbytes`` of this thread's scratch buffer ``slot`` (uint8; fresh memory above
    ``_SCRATCH_KEEP``)."""
    if nbytes > _SCRATCH_KEEP:
        return np.empty(nbytes, np.uint8)
    buf = getattr(_local, slot, None)
    if buf is None or len(buf) < nbytes:
        buf = np.empty(nbytes, np.uint8)
        setattr(_local, slot, buf)
    return buf[:nbytes]


_UNSET = object()
_compress_ctx = _UNSET


def _blosc_compress_ctx():
    """c-blosc's ``blosc_compress_ctx`` from the library inside numcodecs, through ctypes, or None.

    Unlike ``numcodecs.blosc.compress`` (a new bytes object per call: fresh memory, whose first
    touch costs more than the compression) it compresses into a buffer we reuse. Used only after
    it gave the same frame as numcodecs on a test block.
    """
    global _compress_ctx
    if _compress_ctx is _UNSET:
        _compress_ctx = None
        try:
            import ctypes

            from numcodecs import blosc

            fn = ctypes.CDLL(blosc.__file__).blosc_compress_ctx
            fn.restype = ctypes.c_int
            size, ptr = ctypes.c_size_t, ctypes.c_void_p
            fn.argtypes = [ctypes.c_int, ctypes.c_int, size, size, ptr, ptr, size,
                           ctypes.c_char_p, size, ctypes.c_int]  # fmt: skip
            test = np.arange(1000, dtype=np.float64) * 0.37
            out = np.empty(test.nbytes + 16, np.uint8)
            n = fn(5, blosc.SHUFFLE, 8, test.nbytes, test.ctypes.data, out.ctypes.data,
                   out.nbytes, b"lz4", 0, 1)  # fmt: skip
            if n > 0 and out[:n].tobytes() == blosc.compress(test, b"lz4", 5, blosc.SHUFFLE, 0):
                _compress_ctx = fn
        except (OSError, AttributeError, TypeError, ValueError):  # pragma: no cover
            pass
    return _compress_ctx


_fallocate = _UNSET


def _preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes of the new file ``fd`` before writing it, where the filesystem
    does so natively (Linux ``fallocate(2)``; ext4, XFS, btrfs, tmpfs, Lustre …).

    A chunk file written into reserved blocks costs the kernel about half the CPU of a plain
    write (no block reservation page by page). Nothing is emulated: where the call fails (other
    systems, filesystems without it, NFS) the write simply goes ahead without it. Unlike
    ``os.posix_fallocate``, which glibc emulates by writing a byte per block.
    """
    global _fallocate
    if _fallocate is _UNSET:
        _fallocate = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).fallocate
                fn.restype = ctypes.c_int
                fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
                _fallocate = fn
            except (OSError, AttributeError):  # pragma: no cover - a libc without it
                pass
    if _fallocate is not None and size > 0:
        _fallocate(fd, 0, 0, size)  # mode 0: allocate; a failure is ignored (see above)


def _key(directory: Path, k: int, ndim: int) -> Path:
    return directory / "c" / str(k) if ndim == 1 else directory / "c" / str(k) / "0"


class ChunkFiles:
    """Rows of one array read straight from its chunk files (standard layout only).

    A missing chunk file holds the fill value, as in zarr, unless ``missing_is_damage`` is set
    (for arrays whose writer wrote every chunk, as :class:`ChunkEncoder` does). A damaged chunk
    (a missing one then, a frame that does not hold a whole chunk of rows, or does not
    decompress) raises ``ValueError``; the callers turn it into an
    :class:`~eftflow.errors.InputError` naming the store and array.
    """

    def __init__(self, directory: Path, shape, rows: int, dtype, fill):
        self.directory, self.shape, self.rows = Path(directory), tuple(shape), int(rows)
        self.dtype, self.fill = np.dtype(dtype), fill
        self.missing_is_damage = False

    @classmethod
    def open(cls, path: str | os.PathLike, name: str) -> ChunkFiles | None:
        """The reader of array ``name`` of the store at ``path``, or None (not the standard layout)."""
        directory = Path(path) / name
        meta = read_metadata(directory)
        return None if meta is None else cls.from_metadata(directory, meta)

    @classmethod
    def from_metadata(cls, directory: str | os.PathLike, meta: dict) -> ChunkFiles | None:
        """The reader of the array at ``directory`` whose ``zarr.json`` is ``meta``, or None."""
        layout = _layout(meta)
        return None if layout is None else cls(Path(directory), *layout)

    def read(self, i0: int, i1: int) -> np.ndarray:
        """Rows [i0, i1) as a new array."""
        out = np.empty((i1 - i0, *self.shape[1:]), self.dtype)
        self.read_into(i0, i1, out)
        return out

    def read_into(self, i0: int, i1: int, out: np.ndarray) -> None:
        """Rows [i0, i1) decompressed into ``out`` (C-contiguous, ``i1 - i0`` rows)."""
        from numcodecs import blosc

        if i1 <= i0:
            return
        tail = self.shape[1:]
        full = self.rows * int(np.prod(tail, dtype=np.int64)) * self.dtype.itemsize
        scratch = None
        for k in range(i0 // self.rows, (i1 - 1) // self.rows + 1):
            c0 = k * self.rows
            lo, hi = max(i0, c0), min(i1, c0 + self.rows)
            try:
                f = open(_key(self.directory, k, len(self.shape)), "rb")  # noqa: SIM115
            except FileNotFoundError:
                if self.missing_is_damage:
                    raise ValueError(f"chunk {k} is missing") from None
                out[lo - i0 : hi - i0] = self.fill
                continue
            whole = lo == c0 and hi == c0 + self.rows
            if whole:
                dest = out[lo - i0 : hi - i0]
            else:
                if scratch is None:
                    scratch = _scratch(full).view(self.dtype).reshape(self.rows, *tail)
                dest = scratch
            if os.fstat(f.fileno()).st_size == 0:  # mmap refuses empty files
                f.close()
                raise ValueError(f"chunk {k} is an empty file (truncated)")
            with f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                # blosc header: bytes 4–8 the uncompressed size, 12–16 the size of the frame
                size = int.from_bytes(data[4:8], "little")
                frame = int.from_bytes(data[12:16], "little") if len(data) >= 16 else None
                if frame is None or (frame > len(data) and size == full):
                    raise ValueError(f"chunk {k} is truncated ({len(data)} bytes)")
                if frame != len(data):
                    raise ValueError(f"chunk {k} is not a Blosc frame of this array (damaged)")
                if size != full:
                    raise ValueError(f"chunk {k} holds {size} bytes, not {full}")
                try:
                    blosc.decompress(data, dest)
                except RuntimeError as err:
                    raise ValueError(f"chunk {k} cannot be decompressed ({err})") from None
            if not whole:
                out[lo - i0 : hi - i0] = scratch[lo - c0 : hi - c0]


class StoreArray:
    """An array of a zarr v3 store, read without zarr's machinery where its layout allows.

    ``shape``, ``chunks`` and ``dtype`` come from the array's ``zarr.json``; rows are read with
    :class:`ChunkFiles` for the standard layout and through zarr otherwise (``open_group``
    returns the store's zarr group, opened only when needed). ``array[i0:i1]`` reads rows as a
    numpy array. A missing array raises ``KeyError``, as ``group[name]`` does.
    """

    def __init__(self, store_path: str | os.PathLike, name: str, open_group):
        directory = Path(store_path) / name
        self.name, self._open_group, self._zarr = name, open_group, None
        meta = read_metadata(directory)
        try:
            self.shape = tuple(int(s) for s in meta["shape"])
            grid = meta["chunk_grid"]["configuration"]["chunk_shape"]
            self.chunks = tuple(int(c) for c in grid)
            self.dtype = np.dtype(meta["data_type"])
            self._files = ChunkFiles.from_metadata(directory, meta)
        except (KeyError, TypeError, ValueError, IndexError):
            arr = self.zarr()
            self.shape, self.chunks = tuple(arr.shape), tuple(arr.chunks)
            self.dtype, self._files = np.dtype(arr.dtype), None

    def zarr(self):
        """The zarr array itself."""
        if self._zarr is None:
            self._zarr = self._open_group()[self.name]
        return self._zarr

    def __getitem__(self, rows: slice) -> np.ndarray:
        i0, i1, _ = rows.indices(self.shape[0])
        i1 = max(i0, i1)
        if self._files is not None:
            return self._files.read(i0, i1)
        return np.asarray(self.zarr()[i0:i1])

    @property
    def nchunks(self) -> int:
        """Chunks along the rows (the chunks of the standard layout span whole rows)."""
        if self._files is None:
            return int(self.zarr().nchunks)
        return -(-self.shape[0] // self.chunks[0])

    @property
    def nchunks_initialized(self) -> int:
        """Chunks that have a file."""
        if self._files is None:
            return int(self.zarr().nchunks_initialized)
        ndim = len(self.shape)
        return sum(_key(self._files.directory, k, ndim).is_file() for k in range(self.nchunks))


class ChunkEncoder:
    """Writes chunk files of one array created by zarr with the standard layout.

    :meth:`write` compresses a block of rows into the frame zarr writes for the array's codecs
    (Blosc ``cname``/``clevel``/shuffle and typesize from its metadata) and writes it to the
    chunk's key. Thread-safe for distinct chunks.
    """

    def __init__(self, directory: Path, rows: int, dtype, ndim: int, blosc_config: dict):
        from numcodecs import blosc

        self.directory, self.rows, self.ndim = Path(directory), int(rows), int(ndim)
        self.dtype = np.dtype(dtype).newbyteorder("<")  # the ``bytes`` codec is little-endian
        self.cname = str(blosc_config.get("cname", BLOSC_CNAME)).encode()
        self.clevel = int(blosc_config.get("clevel", BLOSC_CLEVEL))
        self.shuffle = {
            "noshuffle": blosc.NOSHUFFLE,
            "shuffle": blosc.SHUFFLE,
            "bitshuffle": blosc.BITSHUFFLE,
        }[blosc_config.get("shuffle", "shuffle")]
        self.blocksize = int(blosc_config.get("blocksize", 0))
        self._made: set[Path] = set()

    @classmethod
    def for_array(cls, directory: str | os.PathLike) -> ChunkEncoder | None:
        """The encoder of the array at ``directory`` (its ``zarr.json``), or None."""
        directory = Path(directory)
        meta = read_metadata(directory)
        layout = None if meta is None else _layout(meta)
        if layout is None:
            return None
        shape, rows, dtype, fill = layout
        if fill != 0:  # edge chunks are padded with zeros
            return None
        config = meta["codecs"][1].get("configuration", {})
        if int(config.get("typesize", np.dtype(dtype).itemsize)) != np.dtype(dtype).itemsize:
            return None
        return cls(directory, rows, dtype, len(shape), config)

    def write(self, k: int, block: np.ndarray) -> None:
        """Write chunk ``k`` from ``block`` (at most ``rows`` rows; a short block is padded).

        Every chunk gets a file, a chunk of zeros too (as zarr's ``write_empty_chunks=True``), so
        that a missing file means a damaged store.
        """
        from numcodecs import blosc

        block = np.ascontiguousarray(block, self.dtype)
        if block.shape[0] < self.rows:  # an edge chunk is stored whole, padded with the fill 0
            pad = np.zeros((self.rows, *block.shape[1:]), self.dtype)
            pad[: block.shape[0]] = block
            block = pad
        compress = _blosc_compress_ctx()
        if compress is not None:
            out = _scratch(block.nbytes + 16, "frame")  # 16: Blosc's largest overhead
            size = compress(self.clevel, self.shuffle, self.dtype.itemsize, block.nbytes,
                            block.ctypes.data, out.ctypes.data, out.nbytes, self.cname,
                            self.blocksize, 1)  # fmt: skip
            if size <= 0:  # pragma: no cover - cannot happen with room for the overhead
                raise RuntimeError(f"Blosc compression failed (code {size})")
            frame = out[:size]
        else:  # pragma: no cover - numcodecs without the symbol
            frame = blosc.compress(block, self.cname, self.clevel, self.shuffle, self.blocksize)
        key = _key(self.directory, k, self.ndim)
        if key.parent not in self._made:
            key.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(key.parent)
        try:
            with open(key, "wb") as f:
                _preallocate(f.fileno(), len(frame))
                f.write(frame)
        except OSError as err:  # e.g. a full disk: name the chunk file (write() does not)
            raise OSError(err.errno, err.strerror, str(key)) from None
