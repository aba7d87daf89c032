"""Run the examples of documentation pages in order, in the current directory.

Usage: ``python tests/docs/run_doc.py docs/PAGE.md [...]``. A page is a session: its ``python``
blocks share one namespace (``__name__ == "__main__"``), blocks of other languages run only when
marked. Directives are HTML comments, invisible on the rendered page:

* ``<!-- docs-test: skip -->`` just before a block: not run (it needs files or programs a reader
  brings, e.g. a MadGraph output);
* ``<!-- docs-test: run -->`` just before a ``bash`` block: run with ``bash -eo pipefail``;
* ``<!-- docs-test: after OTHER.md -->``: run the examples of ``OTHER.md`` first, in the same
  directory (a page that continues another one's worked example);
* ``<!-- docs-test: setup`` … ``-->``: Python run at that point without being shown.

The first failing block stops the run with its page and line; the exit status is 1.
"""

from __future__ import annotations

import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(skip|run|after\s+\S+)\s*-->\s*$")


@dataclass
class Step:
    """One block to run: its language, code and where it starts (page, 1-based line)."""

    kind: str  # "python" or "bash"
    code: str
    page: Path
    line: int


def parse(page: Path) -> tuple[list[str], list[Step]]:
    """The pages to run first (``after``) and the steps of ``page``, in order."""
    lines = page.read_text().splitlines()
    after, steps, pending = [], [], None
    i = 0
    while i < len(lines):
        text = lines[i]
        m = DIRECTIVE.match(text.strip())
        if m:
            word = m.group(1)
            if word.startswith("after"):
                after.append(word.split(None, 1)[1])
            else:
                pending = word
            i += 1
            continue
        if text.strip() == "<!-- docs-test: setup":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "-->")
            steps.append(Step("python", "\n".join(lines[i + 1 : end]) + "\n", page, i + 2))
            i = end + 1
            continue
        m = FENCE.match(text)
        if m:
            lang = m.group(1).lower()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            code = "\n".join(lines[i + 1 : end]) + "\n"
            if pending != "skip" and (lang == "python" or (lang == "bash" and pending == "run")):
                steps.append(Step(lang, code, page, i + 2))
            pending = None
            i = end + 1
            continue
        if text.strip():
            pending = None  # a directive applies to the block right after it
        i += 1
    return after, steps


def plan(page: Path, seen: set | None = None) -> list[Step]:
    """All steps for ``page``, those of the pages it continues first (each page once)."""
    seen = set() if seen is None else seen
    if page.resolve() in seen:
        return []
    seen.add(page.resolve())
    after, steps = parse(page)
    return [s for other in after for s in plan(page.parent / other, seen)] + steps


def main(argv: list[str]) -> int:
    namespace: dict = {"__name__": "__main__"}
    for arg in argv:
        for step in plan(Path(arg)):
            where = f"{step.page}:{step.line}"
            print(f"--- {where} ({step.kind})", flush=True)
            if step.kind == "python":
                try:
                    exec(compile(step.code, where, "exec"), namespace)  # noqa: S102 - our own docs
                except BaseException:  # noqa: BLE001 - report any failure with its place
                    traceback.print_exc()
                    print(f"FAILED: {where}", file=sys.stderr)
                    return 1
            else:
                res = subprocess.run(["bash", "-eo", "pipefail", "-c", step.code], check=False)
                if res.returncode != 0:
                    print(f"FAILED: {where} (exit {res.returncode})", file=sys.stderr)
                    return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
