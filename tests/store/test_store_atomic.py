"""Atomic outputs never replace a directory that is not an output, and leave nothing behind."""

from __future__ import annotations

import pytest

from eftflow.errors import InputError
from eftflow.store.atomic import MARKER, atomic_path


def test_atomic_path_refuses_to_replace_a_user_directory(tmp_path):
    victim = tmp_path / "analysis"
    victim.mkdir()
    (victim / "notes.txt").write_text("important")
    with pytest.raises(InputError) as info:
        with atomic_path(victim) as tmp:
            tmp.write_text("new")
    assert info.value.file == str(victim)
    assert (victim / "notes.txt").read_text() == "important"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis"]


def test_atomic_path_replaces_outputs_files_and_empty_directories(tmp_path):
    out = tmp_path / "out"
    with atomic_path(out) as tmp:  # a directory output gets the marker ...
        tmp.mkdir()
        (tmp / "a.txt").write_text("1")
    assert (out / MARKER).exists()
    with atomic_path(out) as tmp:  # ... so the next run may replace it
        tmp.mkdir()
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b.txt"]
    store = tmp_path / "s.zarr"
    store.mkdir()
    (store / "zarr.json").write_text("{}")
    with atomic_path(store) as tmp:  # a zarr store is an output
        tmp.mkdir()
        (tmp / "zarr.json").write_text('{"new": 1}')
    assert (store / "zarr.json").read_text() == '{"new": 1}'
    assert not (store / MARKER).exists()
    (tmp_path / "empty").mkdir()
    with atomic_path(tmp_path / "empty") as tmp:
        tmp.write_text("file")
    assert (tmp_path / "empty").read_text() == "file"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_atomic_path_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        with atomic_path(tmp_path / "afile" / "sub" / "out.h5"):
            pass


def test_temporaries_of_killed_writers_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from eftflow.store.atomic import _HOST

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".out.zarr.tmp-{_HOST}-{dead}-abcdef12"
    live = tmp_path / f".out.zarr.tmp-{_HOST}-{os.getppid()}-abcdef12"
    elsewhere = tmp_path / f".out.zarr.tmp-otherhost-{dead}-abcdef12"
    for p in (stale, live, elsewhere):
        p.mkdir()
    with atomic_path(tmp_path / "out.zarr") as tmp:
        assert tmp.name.startswith(f".out.zarr.tmp-{_HOST}-{os.getpid()}-")
        tmp.write_text("x")
    assert not stale.exists() and live.exists() and elsewhere.exists()


def test_unwritable_directory_named_not_the_temporary():
    """An output in a directory nobody may write to (even root: /sys) is one clear message
    naming the output and the directory, not the temporary's name."""
    import os

    try:
        os.close(os.open("/sys/.eftflow-probe", os.O_CREAT | os.O_WRONLY))
        os.unlink("/sys/.eftflow-probe")
        pytest.skip("needs a directory that refuses new files")
    except OSError:
        pass
    with pytest.raises(InputError) as err:
        with atomic_path("/sys/out.h5"):
            pass
    assert err.value.file == "/sys/out.h5" and "cannot write in /sys" in str(err.value)
    assert ".tmp-" not in str(err.value)
