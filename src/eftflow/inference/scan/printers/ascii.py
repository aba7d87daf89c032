"""ascii printer: whitespace-separated columns plus an info file describing them.

``samples.txt`` holds one row per point, values with 17 significant digits (floats round-trip
exactly, so resume can compare them), ``none`` where a quantity is invalid.
``samples.txt_info`` names each column (``Column 1: MPIrank`` ...), as GAMBIT's ascii printer
does. Extras written at the end go to ``samples_<name>.txt`` (columns ``MPIrank pointID
<name>``). On resume the file is rewritten (atomically) with its committed rows only.
"""

from __future__ import annotations

import os

import numpy as np

from eftflow.errors import InputError
from eftflow.inference.scan.printers.base import INT_COLUMNS, BufferedPrinter, register_printer

__all__ = ["AsciiPrinter", "read_ascii"]


def _fmt(value: float, valid: bool, integer: bool) -> str:
    if not valid:
        return "none"
    return str(int(value)) if integer else repr(float(value))


@register_printer("ascii")
class AsciiPrinter(BufferedPrinter):
    """See module docstring."""

    filename = "samples.txt"

    @property
    def path(self):
        return self.directory / self.filename

    @property
    def info_path(self):
        return self.directory / (self.filename + "_info")

    def open(self, columns, metadata, resume_rows=None) -> None:
        from eftflow.inference.scan.checkpoint import atomic_write_text

        self.columns = list(columns)
        info = [f"Column {i + 1}: {c}" for i, c in enumerate(self.columns)]
        info.append("")
        info.append(
            "'none' marks a quantity that is invalid at that point (GAMBIT's _isvalid = 0)."
        )
        if resume_rows is None:
            atomic_write_text(self.info_path, "\n".join(info) + "\n")
            atomic_write_text(self.path, "")
            return
        if not self.path.exists():
            raise InputError("scan output missing, cannot resume", file=str(self.path))
        lines = self.path.read_text().splitlines(keepends=True)
        if len(lines) < resume_rows:
            raise InputError(
                f"has {len(lines)} rows but the checkpoint committed {resume_rows}",
                file=str(self.path),
            )
        atomic_write_text(self.path, "".join(lines[:resume_rows]))

    def flush(self) -> None:
        rows = self._take()
        if not rows:
            return
        n = len(rows["LogLike"][0])
        cols = [(rows[c][0], rows[c][1], c in INT_COLUMNS) for c in self.columns]
        lines = [
            " ".join(_fmt(v[i], ok[i], isint) for v, ok, isint in cols) + "\n" for i in range(n)
        ]
        with open(self.path, "a") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> dict:
        return read_ascii(self.path)

    def write_auxiliary(self, name, values, valid) -> None:
        from eftflow.inference.scan.checkpoint import atomic_write_text

        rows = self.read()
        ranks, pids = rows["MPIrank"][0], rows["pointID"][0]
        text = f"# MPIrank pointID {name}\n" + "".join(
            f"{int(r)} {int(p)} {_fmt(v, ok, False)}\n"
            for r, p, v, ok in zip(ranks, pids, values, valid)
        )
        atomic_write_text(self.directory / f"samples_{name}.txt", text)

    def close(self) -> None:
        self.flush()


def read_ascii(path) -> dict:
    """Read ``samples.txt`` with its ``_info`` file: ``{quantity: (values, isvalid bool)}``."""
    from pathlib import Path

    path = Path(path)
    info = Path(str(path) + "_info")
    try:
        names = [
            line.split(": ", 1)[1]
            for line in info.read_text().splitlines()
            if line.startswith("Column ")
        ]
        lines = path.read_text().splitlines()
    except OSError as err:
        raise InputError(f"cannot read scan output ({err.strerror})", file=str(path)) from None
    table = [line.split() for line in lines if line.strip()]
    if any(len(t) != len(names) for t in table):
        bad = next(i for i, t in enumerate(table) if len(t) != len(names))
        raise InputError(
            f"row has the wrong number of columns (expected {len(names)})",
            file=str(path),
            field=f"line {bad + 1}",
        )
    arr = np.array(table, dtype=object).reshape(len(table), len(names))
    out = {}
    for j, name in enumerate(names):
        col = arr[:, j]
        valid = col != "none"
        values = np.array([float(v) if ok else np.nan for v, ok in zip(col, valid)], dtype=float)
        out[name] = (values, valid.astype(bool))
    for aux in path.parent.glob("samples_*.txt"):
        name = aux.stem[len("samples_") :]
        data = [ln.split() for ln in aux.read_text().splitlines() if ln and not ln.startswith("#")]
        valid = np.array([d[2] != "none" for d in data], dtype=bool)
        out[name] = (np.array([float(d[2]) if ok else np.nan for d, ok in zip(data, valid)]), valid)
    return out
