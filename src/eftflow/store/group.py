"""Opening eftflow's zarr stores: existence, format name, format version and completeness.

Every store layout (events, particles, reconstructed objects) is a zarr group whose attributes
carry ``format``, ``format_version`` and, written last, ``n_events``; :func:`open_store_group`
(and :func:`read_store_attrs`, which reads the attributes without zarr) checks all of them and
raises one clear :class:`~eftflow.errors.InputError` naming the file and the attribute at fault.
"""

from __future__ import annotations

from pathlib import Path

from eftflow.errors import InputError

__all__ = ["open_store_group", "read_store_attrs", "lazy_group"]


def _check_attrs(attrs: dict, p: str, kind: str, fmt: str, version: int, hint: str) -> None:
    if attrs.get("format") != fmt:
        raise InputError(
            f"not an eftflow {kind} store (format={attrs.get('format')!r}){hint}",
            file=p,
            field="attrs.format",
        )
    try:
        newer = int(attrs.get("format_version", 0)) > version
    except (TypeError, ValueError):
        newer = True
    if newer:
        raise InputError(
            f"store format version {attrs['format_version']!r} is newer than this eftflow ({version})",
            file=p,
            field="attrs.format_version",
        )
    if "n_events" not in attrs:
        raise InputError(
            "store is incomplete (its write was interrupted)", file=p, field="attrs.n_events"
        )


def open_store_group(path, *, kind: str, fmt: str, version: int, hint: str = ""):
    """``(group, attrs)`` of the complete, readable store of format ``fmt`` at ``path``.

    ``kind`` names the store in messages ("event", "particle", ...); ``hint`` is appended to the
    format errors (e.g. which command writes such a store).
    """
    import zarr

    p = str(path)
    if not Path(path).exists():
        raise InputError(f"{kind} store does not exist", file=p)
    if not Path(path).is_dir():
        raise InputError(
            f"is a file, not an eftflow {kind} store (a *.zarr directory){hint}", file=p
        )
    if not (Path(path) / "zarr.json").exists() and not (Path(path) / ".zgroup").exists():
        raise InputError(
            f"is a directory without zarr.json: not an eftflow {kind} store{hint}", file=p
        )
    try:
        group = zarr.open_group(p, mode="r")
    except Exception as err:  # zarr raises several types for non-stores
        raise InputError(
            f"not an eftflow {kind} store ({type(err).__name__}: {err}){hint}", file=p
        ) from None
    attrs = dict(group.attrs)
    _check_attrs(attrs, p, kind, fmt, version, hint)
    return group, attrs


def read_store_attrs(path, *, kind: str, fmt: str, version: int, hint: str = "") -> dict:
    """The attributes of the complete store of format ``fmt`` at ``path`` (checked as by
    :func:`open_store_group`), read straight from the group's ``zarr.json`` without opening the
    group through zarr; anything but a zarr v3 group document goes through zarr."""
    from eftflow.store.chunkfiles import read_metadata

    meta = read_metadata(path)
    attrs = None if meta is None else meta.get("attributes", {})
    if (
        meta is None
        or meta.get("zarr_format") != 3
        or meta.get("node_type") != "group"
        or not isinstance(attrs, dict)
    ):
        return open_store_group(path, kind=kind, fmt=fmt, version=version, hint=hint)[1]
    _check_attrs(attrs, str(path), kind, fmt, version, hint)
    return attrs


def lazy_group(path):
    """A function that returns the zarr group at ``path`` (read-only), opened on its first call.

    The stores read their metadata and standard-layout chunks directly and need zarr only for
    arrays in another layout.
    """
    group = None

    def get():
        nonlocal group
        if group is None:
            import zarr

            group = zarr.open_group(str(path), mode="r")
        return group

    return get
