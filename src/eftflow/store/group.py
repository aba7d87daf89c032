"""Opening eftflow's zarr stores: existence, format name, format version and completeness.

Every store layout (events, particles, reconstructed objects) is a zarr group whose attributes
carry ``format``, ``format_version`` and, written last, ``n_events``; :func:`open_store_group`
checks all of them and raises one clear :class:`~eftflow.errors.InputError` naming the file and
the attribute at fault.
"""

from __future__ import annotations

from pathlib import Path

from eftflow.errors import InputError

__all__ = ["open_store_group"]


def open_store_group(path, *, kind: str, fmt: str, version: int, hint: str = ""):
    """``(group, attrs)`` of the complete, readable store of format ``fmt`` at ``path``.

    ``kind`` names the store in messages ("event", "particle", ...); ``hint`` is appended to the
    format errors (e.g. which command writes such a store).
    """
    import zarr

    p = str(path)
    if not Path(path).exists():
        raise InputError(f"{kind} store does not exist", file=p)
    try:
        group = zarr.open_group(p, mode="r")
    except Exception as err:  # zarr raises several types for non-stores
        raise InputError(
            f"not a zarr {kind} store ({type(err).__name__}: {err}){hint}", file=p
        ) from None
    attrs = dict(group.attrs)
    if attrs.get("format") != fmt:
        raise InputError(
            f"not an eftflow {kind} store (format={attrs.get('format')!r}){hint}",
            file=p,
            field="attrs.format",
        )
    if int(attrs.get("format_version", 0)) > version:
        raise InputError(
            f"store format version {attrs['format_version']} is newer than this eftflow ({version})",
            file=p,
            field="attrs.format_version",
        )
    if "n_events" not in attrs:
        raise InputError(
            "store is incomplete (its write was interrupted)", file=p, field="attrs.n_events"
        )
    return group, attrs
