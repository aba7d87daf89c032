"""Crash-safe bookkeeping of a scan: atomic files, checkpoint, lock, signals.

The checkpoint (``checkpoint.json``, replaced atomically: temp file, fsync, ``os.replace``)
records the committed row count, the last ``pointID`` of every rank, the scanner generator's
state, the ordered parameter names and the digest of the defaulted scan file. Resume truncates
the printer output to the committed rows, then lets the scanner run again from its seed while
the committed points are *replayed* from the output instead of re-evaluated; the generator state
is compared with the checkpoint's when the replay reaches it, so a non-deterministic scanner is
detected instead of silently producing a different scan.

SIGTERM, SIGINT and SIGUSR1 (SLURM's walltime warning, ``--signal=USR1@120``) make the scan
flush, checkpoint and exit with :data:`EXIT_INTERRUPTED`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import secrets
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from eftflow.errors import ConfigError, InputError
from eftflow.store.atomic import process_alive

__all__ = [
    "EXIT_INTERRUPTED",
    "atomic_write_text",
    "Checkpoint",
    "RunLock",
    "SignalTrap",
]

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 3
"""Exit status of ``eftflow scan`` when it stopped on a signal after checkpointing."""

CHECKPOINT_FORMAT = 1


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _jsonable_state(rng: np.random.Generator | None):
    return None if rng is None else rng.bit_generator.state


class Checkpoint:
    """Read and write ``<outdir>/checkpoint.json``."""

    filename = "checkpoint.json"

    def __init__(
        self,
        directory: str | Path,
        *,
        spec_digest: str,
        parameters: list[str],
        scanner: str,
        seed: int,
        n_ranks: int,
    ):
        self.path = Path(directory) / self.filename
        self.base = {
            "format": CHECKPOINT_FORMAT,
            "spec_digest": spec_digest,
            "parameters": list(parameters),
            "scanner": scanner,
            "seed": seed,
            "n_ranks": n_ranks,
        }

    def save(
        self,
        committed_rows: int,
        last_point_ids: dict,
        rng=None,
        *,
        complete: bool = False,
        extra: dict | None = None,
    ) -> None:
        """Write the checkpoint atomically."""
        doc = {
            **self.base,
            "committed_rows": int(committed_rows),
            "last_point_ids": {str(k): int(v) for k, v in sorted(last_point_ids.items())},
            "rng_states": {"scanner": _jsonable_state(rng)},
            "complete": complete,
            **(extra or {}),
        }
        atomic_write_text(self.path, json.dumps(doc, indent=1, sort_keys=True))

    def load(self) -> dict:
        """Read and verify an existing checkpoint against this run; refuse when corrupt or different."""
        try:
            doc = json.loads(self.path.read_text())
        except OSError:
            raise InputError("no checkpoint to resume from", file=str(self.path)) from None
        except json.JSONDecodeError as err:
            raise InputError(
                f"checkpoint is corrupt ({err.msg}); refusing to resume or overwrite it",
                file=str(self.path),
            ) from None
        need = [
            "format",
            "committed_rows",
            "last_point_ids",
            "parameters",
            "spec_digest",
            "rng_states",
        ]
        missing = [k for k in need if k not in doc] if isinstance(doc, dict) else need
        if missing:
            raise InputError(
                "checkpoint is corrupt (missing key); refusing to resume or overwrite it",
                file=str(self.path),
                field=missing[0],
            )
        if doc["format"] != CHECKPOINT_FORMAT:
            raise InputError(
                f"checkpoint format {doc['format']} not supported",
                file=str(self.path),
                field="format",
            )
        if doc["parameters"] != self.base["parameters"]:
            raise ConfigError(
                f"the scan's parameters changed since the checkpoint ({doc['parameters']} -> "
                f"{self.base['parameters']}); resume refused",
                file=str(self.path),
                field="parameters",
            )
        if doc.get("n_ranks") != self.base["n_ranks"]:
            log.warning(
                "resuming with %s MPI ranks instead of %s: new points are numbered per rank as usual",
                self.base["n_ranks"],
                doc.get("n_ranks"),
            )
        doc["last_point_ids"] = {int(k): int(v) for k, v in doc["last_point_ids"].items()}
        return doc


class RunLock:
    """A lock file ``<outdir>/.lock`` so two scans never write the same output.

    The lock records who holds it (:func:`_lock_record`): host, pid, when it was taken, the
    process's identity on Linux (boot id and start time, so a pid since reused by another process
    is recognised), its pid namespace and its SLURM job. It is created complete (written to a
    temporary file, then hard-linked to ``.lock``, which fails if one exists; the classic
    NFS-safe way). A lock is removed automatically only when it is provably stale: taken on this
    host, in this pid namespace, by a process that no longer runs; removals are serialised by a
    second file, ``.lock.break``, so that of several scans finding the same stale lock only one
    removes it and exactly one takes the lock. A lock taken on another host
    (or in another container) cannot be checked from here, so it is never removed: the scan is
    refused, and the message says which file to delete if that scan is really gone.
    """

    filename = ".lock"
    #: age in seconds after which a ``.lock.break`` left behind is removed
    BREAKER_STALE_S = 30.0

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / self.filename
        self.held = False
        self._mine: dict | None = None

    def acquire(self) -> None:
        """Take the lock, removing a provably stale one; :class:`InputError` if it is held."""
        me = _lock_record()
        for _ in range(50):  # a few rounds, unless other scans are removing a stale lock
            if self._create(me):
                self.held, self._mine = True, me
                return
            other = self._read()
            if other is None:  # removed meanwhile
                continue
            if other == me:  # made, though the filesystem did not say so
                self.held, self._mine = True, me
                return
            reason = _stale_reason(other, me)
            if reason is None:
                raise InputError(_held_message(other, me, self.path), file=str(self.path))
            log.warning("removing stale lock %s (%s): %s", self.path, _who(other), reason)
            self._remove_if_unchanged(other)
        raise InputError(
            "cannot take the output lock: other scans keep taking it", file=str(self.path)
        )

    def release(self) -> None:
        """Remove the lock if this process holds it (and it is still the one it wrote)."""
        if not self.held:
            return
        self.held = False
        try:
            current = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            current = None
        if current != self._mine:
            log.warning("lock %s is no longer the one this scan took; left in place", self.path)
            return
        with contextlib.suppress(OSError):
            self.path.unlink()

    # -- helpers ---------------------------------------------------------------------------
    def _create(self, record: dict) -> bool:
        """Create ``.lock`` holding ``record`` if there is none; whether this call created it."""
        return self._create_at(self.path, json.dumps(record, sort_keys=True))

    def _create_at(self, path: Path, text: str) -> bool:
        """Create ``path`` holding ``text`` if it does not exist; whether this call created it."""
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lock.", suffix=".tmp")
        try:
            os.chmod(tmp, 0o644 & ~_umask())  # other users' scans must be able to read it
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links: exclusive create instead
                return self._create_exclusive(path, text)
            # a link whose reply was lost (NFS) reports an error although it was made
            return os.stat(tmp).st_nlink == 2
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    @staticmethod
    def _create_exclusive(path: Path, text: str) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _read(self) -> dict | None:
        """The lock's record; None if there is no lock; InputError if it cannot be read."""
        for attempt in range(2):
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                return None
            except OSError as err:
                raise InputError(
                    f"cannot read the output lock ({err.strerror})", file=str(self.path)
                ) from None
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                return doc
            if attempt == 0:  # being written by an exclusive create: look again
                time.sleep(0.5)
        raise InputError(
            "the output lock is unreadable, so whether a scan is writing this directory cannot "
            f"be checked; if no scan is running there, delete {self.path} and rerun",
            file=str(self.path),
        )

    def _remove_if_unchanged(self, seen: dict) -> None:
        """Remove the lock if it still is ``seen``, holding ``.lock.break`` meanwhile.

        Removals are serialised by the breaker file (created like the lock, so only one scan
        holds it): under it the lock is read again and removed only if it is the stale one seen.
        A lock another scan took meanwhile is never moved or removed, not even for a moment (a
        scan that moved it aside to compare would leave a gap in which a third one could take
        the lock too). A breaker left by a scan killed in the middle of a removal (which takes
        milliseconds) is removed once it is older than :attr:`BREAKER_STALE_S` seconds.
        """
        breaker = self.path.with_name(self.filename + ".break")
        if not self._create_at(breaker, json.dumps(_lock_record(), sort_keys=True)):
            with contextlib.suppress(OSError):
                if time.time() - breaker.stat().st_mtime > self.BREAKER_STALE_S:
                    log.warning("removing stale lock breaker %s", breaker)
                    breaker.unlink()
            time.sleep(0.05)  # another scan is removing the stale lock: look again
            return
        try:
            try:
                now = json.loads(self.path.read_text())
            except (OSError, ValueError):
                now = None
            if now == seen:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            with contextlib.suppress(OSError):
                breaker.unlink()


def _read_text(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _process_identity(pid: int) -> str | None:
    """``<boot id>:<start time>`` of process ``pid`` (Linux ``/proc``), None where unknown.

    Unlike a pid, it is never reused: a different identity under the same pid is another process.
    """
    boot, stat = _read_text("/proc/sys/kernel/random/boot_id"), _read_text(f"/proc/{pid}/stat")
    if not boot or not stat or ")" not in stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return f"{boot.strip()}:{fields[19]}" if len(fields) > 19 else None  # field 22: starttime


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _lock_record() -> dict:
    """What a lock taken by this process records."""
    pid = os.getpid()
    record = {
        "host": socket.gethostname(),
        "pid": pid,
        "taken": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "process": _process_identity(pid),
        "pid_namespace": _pid_namespace(),
        "token": secrets.token_hex(8),  # tells this lock from any other, even of this process
    }
    if os.environ.get("SLURM_JOB_ID"):
        record["slurm_job"] = os.environ["SLURM_JOB_ID"]
    return record


def _same_machine(other: dict, me: dict) -> bool:
    """Whether a lock was taken where its pid can be checked: this host and pid namespace."""
    if other.get("host") != me["host"]:
        return False
    ns = other.get("pid_namespace")
    return ns is None or me["pid_namespace"] is None or ns == me["pid_namespace"]


def _stale_reason(other: dict, me: dict) -> str | None:
    """Why the lock ``other`` is provably stale, or None if it may be held by a running scan."""
    if not _same_machine(other, me):
        return None
    pid = other.get("pid")
    if not process_alive(pid):
        return f"process {pid} no longer runs"
    recorded, now = other.get("process"), _process_identity(pid)
    if recorded and now and recorded != now:
        return f"pid {pid} now belongs to another process"
    return None


def _who(other: dict) -> str:
    parts = [f"host {other.get('host', '?')}", f"pid {other.get('pid', '?')}"]
    if other.get("taken"):
        parts.append(f"taken {other['taken']}")
    if other.get("slurm_job"):
        parts.append(f"SLURM job {other['slurm_job']}")
    return ", ".join(parts)


def _held_message(other: dict, me: dict, path: Path) -> str:
    if not _same_machine(other, me):
        where = "another host" if other.get("host") != me["host"] else "another container"
        check = f" (squeue -j {other['slurm_job']})" if other.get("slurm_job") else ""
        return (
            f"the output directory is locked by a scan on {where} ({_who(other)}); a lock "
            "taken on another host cannot be checked from here, so it is never removed "
            f"automatically. If that scan is no longer running{check}, delete {path} and rerun"
        )
    return (
        f"the output directory is locked by another scan that is running ({_who(other)}). "
        f"If no scan is writing there (pid {other.get('pid')} may since have been reused by "
        f"another program), delete {path} and rerun"
    )


class SignalTrap:
    """Context manager: SIGTERM/SIGINT/SIGUSR1 set :attr:`received` instead of killing."""

    SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")

    def __init__(self):
        self.received: int | None = None
        self._old: dict = {}

    def __call__(self) -> bool:
        return self.received is not None

    def _handler(self, signum, frame):
        # no logging here: a handler may run while the logging module holds its lock; the
        # evaluator reports the signal (:attr:`name`) when it stops
        self.received = signum

    @property
    def name(self) -> str | None:
        """Name of the signal received (``"SIGTERM"``), None if none was."""
        if self.received is None:
            return None
        try:
            return signal.Signals(self.received).name
        except ValueError:
            return f"signal {self.received}"

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
        return False
