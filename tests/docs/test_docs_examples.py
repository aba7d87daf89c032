"""Every worked example in ``docs/`` and the README runs as written (see ``run_doc.py`` for the
directives)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("run_doc.py")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

sys.path.insert(0, str(DRIVER.parent))
from run_doc import parse, plan  # noqa: E402


def _runnable(page: Path) -> bool:
    return bool(plan(page))


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: p.name)
def test_examples_run(page, tmp_path):
    # as a reader would: from a directory holding the repository's config/ and tests/ (but
    # nothing else of it, nor anything an earlier page left), the venv on PATH
    for name in ("config", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    res = subprocess.run(
        [sys.executable, str(DRIVER), str(page)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, f"{page.name}:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"


def test_directives_are_understood(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "<!-- docs-test: setup\nx = 1\n-->\n"
        "```python\ny = x + 1\n```\n"
        "<!-- docs-test: skip -->\n```python\nraise SystemExit(3)\n```\n"
        "```bash\nexit 1\n```\n"
        "<!-- docs-test: run -->\n\n```bash\ntrue\n```\n"
        "<!-- docs-test: skip -->\ntext between\n```python\nz = 3\n```\n"
    )
    after, steps = parse(page)
    assert after == []
    assert [(s.kind, s.line) for s in steps] == [
        ("python", 2),
        ("python", 5),
        ("bash", 17),
        ("python", 22),
    ]


def test_a_failing_example_names_its_page_and_line(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("intro\n\n```python\nok = 1\n```\n\n```python\nraise ValueError('boom')\n```\n")
    res = subprocess.run(
        [sys.executable, str(DRIVER), str(page)], cwd=tmp_path, capture_output=True, text=True
    )
    assert res.returncode == 1
    assert f"FAILED: {page}:8" in res.stderr and "ValueError: boom" in res.stderr
