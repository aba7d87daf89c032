"""Atomic output: write to a temporary sibling path, rename into place only when complete."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "remove_path",
    "remove_stale",
    "stale_prefix",
    "replaceable",
    "process_alive",
    "MARKER",
]


def remove_path(path: str | os.PathLike) -> None:
    """Remove a file or a directory tree if it exists."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


_HOST = socket.gethostname().split(".")[0].replace("-", "_") or "host"


def stale_prefix(final: str | os.PathLike, kind: str = "tmp") -> str:
    """Name prefix of this host's temporary siblings of ``final`` of one ``kind`` (``tmp``:
    a store being written, ``old``: a replaced output being removed, ``shuffle``: the block
    files of a shuffle); the writer's process id and a random tag follow it."""
    return f".{Path(final).name}.{kind}-{_HOST}-"


def remove_stale(parent: str | os.PathLike, prefix: str) -> None:
    """Remove entries of ``parent`` named ``<prefix><pid>-…`` whose process is gone.

    Such names carry the host (in ``prefix``) and the process id of their writer: one whose
    process no longer runs on this host was left by a killed writer (SIGKILL, a node lost) and
    is removed; others (live writers, other hosts) are left alone.
    """
    try:
        siblings = [p for p in Path(parent).iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for p in siblings:
        pid = p.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            with contextlib.suppress(OSError):
                remove_path(p)


def _remove_stale(final: Path) -> None:
    """Remove temporary siblings of ``final`` left by killed writers (see :func:`remove_stale`)."""
    for kind in ("tmp", "old"):
        remove_stale(final.parent, stale_prefix(final, kind))


def process_alive(pid) -> bool:
    """Whether process ``pid`` (an int > 0) runs on this host (signal 0; no permission = alive)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: written into every directory output, so that a later run may replace it
MARKER = ".eftflow-output"


def replaceable(path: str | os.PathLike) -> bool:
    """Whether an existing ``path`` may be replaced by a new output: a file, an empty
    directory, a zarr store, or a directory written by :func:`atomic_path` (its marker file)."""
    p = Path(path)
    if not p.is_dir() or p.is_symlink():
        return True
    try:  # one listing: another writer may replace the directory meanwhile
        names = set(os.listdir(p))
    except FileNotFoundError:
        return True
    return MARKER in names or "zarr.json" in names or not names


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it to ``final`` on success.

    On any exception the temporary path is removed and ``final`` is left as it was, so a failed
    or interrupted write never leaves a half-written output. Works for files and directories
    (zarr stores). An existing ``final`` is replaced, unless it is a directory that is not an
    output (see :func:`replaceable`): that is refused before anything is written, so that a
    mistyped ``-o`` never deletes a user's directory.

    Example
    -------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "out.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "out.txt").read_text()
    'done'
    """
    from eftflow.errors import InputError

    final = Path(final)
    if not replaceable(final):
        raise InputError(
            "is a directory that is not an eftflow output: refusing to replace it "
            "(name an output inside it, or remove it first)",
            file=str(final),
        )
    for parent in (final.parent, *final.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{parent} is a file, not a directory", file=str(final))
            break
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the directory ({err.strerror})", file=str(final)) from None
    _remove_stale(final)
    tmp = final.with_name(f"{stale_prefix(final)}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:  # can we write there at all? (one clear message instead of one about the temporary)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        os.unlink(tmp)
    except OSError as err:
        raise InputError(
            f"cannot write in {final.parent} ({err.strerror})", file=str(final)
        ) from None
    try:
        yield tmp
        if tmp.is_dir() and not (tmp / "zarr.json").exists():
            (tmp / MARKER).write_text("written by eftflow; a new run may replace this directory\n")
        _commit(tmp, final)
    except BaseException:
        remove_path(tmp)
        raise


#: attempts to put an output in place while other writers replace the same path
_COMMIT_TRIES = 100


def _commit(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``, replacing what is there (the last writer wins).

    A directory cannot be renamed over a non-empty one, so an existing directory is first moved
    aside (``.<name>.old-…``) and removed after. Other processes writing the same output at the
    same time may move or place ``final`` between these steps: each step that finds ``final``
    changed is retried, so that every writer ends with a complete output at ``final`` (its own
    or a later one) and leaves no temporary behind.
    """
    from eftflow.errors import InputError

    for _ in range(_COMMIT_TRIES):
        if final.is_dir() and not final.is_symlink():
            old = final.with_name(
                f"{stale_prefix(final, 'old')}{os.getpid()}-{uuid.uuid4().hex[:8]}"
            )
            try:
                os.replace(final, old)
            except FileNotFoundError:  # another writer moved it aside first
                continue
            try:
                os.replace(tmp, final)
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
                    raise
                continue  # another writer's output arrived first: move it aside too
            finally:
                remove_path(old)
            return
        try:
            if tmp.is_dir() and (final.exists() or final.is_symlink()):
                with contextlib.suppress(FileNotFoundError):
                    final.unlink()
            os.replace(tmp, final)
            return
        except OSError as err:  # a directory appeared at ``final`` meanwhile
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                raise
    raise InputError(
        f"could not put the output in place: {_COMMIT_TRIES} other writes of the same path "
        "got in between",
        file=str(final),
    )
