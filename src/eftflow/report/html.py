"""Small HTML helpers for report sections: tables, numbers, embedded images, notes, the page.

Everything is escaped here, so sections build fragments from these helpers and plain strings.
Images are embedded as base64 PNG, so the report is one self-contained file.

>>> table([["a", 1.5e-3]], header=["name", "value"]).count("<tr>")
2
>>> num(123456.789), num(0.00012345), num(3)
('1.235e+05', '1.234e-04', '3')
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "esc",
    "num",
    "table",
    "image",
    "figure_png",
    "note",
    "details",
    "json_block",
    "page",
]


def esc(value: Any) -> str:
    """HTML-escaped ``str(value)``."""
    return html.escape(str(value), quote=True)


def num(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (integers as they are); other values as text."""
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, int):
        return str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if x == 0:
        return "0"
    if x != x or abs(x) in (float("inf"),):
        return esc(x)
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{digits - 1}e}"


def _cell(value: Any, tag: str) -> str:
    if isinstance(value, RawHTML):
        return f"<{tag}>{value}</{tag}>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<{tag} class="num">{num(value)}</{tag}>'
    return f"<{tag}>{esc(value)}</{tag}>"


class RawHTML(str):
    """A string that table cells insert as it is (already HTML)."""


def table(
    rows: Iterable[Sequence[Any]],
    header: Sequence[Any] | None = None,
    *,
    caption: str | None = None,
    cls: str = "",
) -> str:
    """An HTML table; numbers are right-aligned and formatted by :func:`num`."""
    out = [f'<table class="{esc(cls)}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    if header:
        out.append("<thead><tr>" + "".join(_cell(h, "th") for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(_cell(v, "td") for v in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def image(path: str | os.PathLike, caption: str = "", *, alt: str = "") -> str:
    """An image file embedded as a base64 data URI, with a caption."""
    data = Path(path).read_bytes()
    return figure_png(data, caption, alt=alt or Path(path).name)


def figure_png(data: bytes, caption: str = "", *, alt: str = "figure") -> str:
    """PNG bytes embedded as a base64 data URI, with a caption."""
    b64 = base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def note(text: str, kind: str = "note") -> str:
    """A highlighted note (``kind``: note, warn, skip)."""
    return f'<p class="{esc(kind)}">{esc(text)}</p>'


def details(summary: str, body_html: str) -> str:
    """A collapsed block (``<details>``) with an escaped summary and an HTML body."""
    return f"<details><summary>{esc(summary)}</summary>\n{body_html}\n</details>"


def json_block(data: Any) -> str:
    """Pretty-printed JSON in a ``<pre>`` block."""
    return f"<pre>{esc(json.dumps(data, indent=1, sort_keys=True, default=str))}</pre>"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
 background:#f6f7f9;line-height:1.45}
header{background:#1f3b5a;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:1.6em} header p{margin:4px 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #dde1e6;padding:8px 32px;position:sticky;top:0;
 z-index:2;font-size:.9em}
nav a{margin-right:14px;color:#1f5c99;text-decoration:none;white-space:nowrap}
main{max-width:1200px;margin:0 auto;padding:8px 32px 48px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:4px 22px 18px;
 margin:18px 0}
h2{font-size:1.25em;border-bottom:2px solid #e3e7ec;padding-bottom:6px}
h3{font-size:1.05em;margin-top:1.2em}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.88em;display:block;overflow-x:auto;
 max-width:100%}
caption{text-align:left;font-weight:600;padding:4px 0;color:#44505f}
th,td{border:1px solid #dde1e6;padding:4px 9px;vertical-align:top}
th{background:#eef1f5;text-align:left} tbody tr:nth-child(even){background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,
 SFMono-Regular,Menlo,monospace}
figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}
figure img{max-width:560px;width:100%;border:1px solid #e3e7ec}
figcaption{font-size:.85em;color:#55606e;max-width:560px}
.note{color:#44505f} .warn{background:#fff4e0;border-left:4px solid #e39b1b;padding:6px 10px}
.skip{background:#f0f2f5;border-left:4px solid #9aa4b1;padding:6px 10px;color:#55606e}
pre{background:#f3f5f8;padding:8px;overflow:auto;font-size:.8em;max-height:420px}
details{margin:6px 0} summary{cursor:pointer;color:#1f5c99}
.kv td:first-child{font-weight:600;background:#f7f8fa} .kv td.num{text-align:left}
footer{color:#6b7480;font-size:.8em;text-align:center;padding:20px}
"""


def page(
    title: str,
    subtitle: str,
    sections: Sequence[tuple[str, str, str]],
    footer: str,
    provenance: dict | None = None,
) -> str:
    """The whole document: ``sections`` are ``(anchor, title, html)``; ``provenance`` is embedded
    as JSON in ``<script type="application/json" id="eftflow-provenance">``."""
    nav = "".join(f'<a href="#{esc(k)}">{esc(t)}</a>' for k, t, _ in sections)
    prov = ""
    if provenance is not None:
        blob = json.dumps(provenance, sort_keys=True, default=str)
        # no "<", ">" or "&" at all inside <script>: "</script" and "<!--" cannot end or
        # derail it, whatever a path or name recorded in the provenance holds
        for ch, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            blob = blob.replace(ch, code)
        prov = f'<script type="application/json" id="eftflow-provenance">{blob}</script>\n'
    body = "\n".join(
        f'<section id="{esc(k)}"><h2>{esc(t)}</h2>\n{h}\n</section>' for k, t, h in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>\n"
        f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n<footer>{esc(footer)}</footer>\n"
        f"{prov}</body></html>\n"
    )
