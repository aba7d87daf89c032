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
import json
import logging
import os
import signal
import socket
import tempfile
import threading
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
    """A lock file ``<outdir>/.lock`` so two scans never write the same output."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / ".lock"
        self.held = False

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    other = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    other = {}
                if other.get("host") == me["host"] and process_alive(other.get("pid")):
                    raise ConfigError(
                        f"another scan (pid {other['pid']}) is writing this output directory",
                        file=str(self.path),
                    ) from None
                log.warning("removing stale lock %s (%s)", self.path, other)
                with contextlib.suppress(OSError):
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return
        raise ConfigError("cannot take the output lock", file=str(self.path))

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.held = False


class SignalTrap:
    """Context manager: SIGTERM/SIGINT/SIGUSR1 set :attr:`received` instead of killing."""

    SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")

    def __init__(self):
        self.received: int | None = None
        self._old: dict = {}

    def __call__(self) -> bool:
        return self.received is not None

    def _handler(self, signum, frame):
        log.warning("received signal %d: checkpointing and stopping", signum)
        self.received = signum

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
