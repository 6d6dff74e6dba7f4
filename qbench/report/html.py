"""Assemble self-contained, offline HTML pages from Plotly figures (plotly.js embedded once)."""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go

from qbench.atomic import atomic_write

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}
.summary{background:#f4f6f8;border-left:4px solid #3b6ea5;padding:.8em 1em;line-height:1.5}
.meta{color:#666;font-size:.85em}
"""


def page(title: str, summary: str, sections: list[tuple[str, go.Figure | str]],
         meta: str = "") -> str:
    """An HTML page: title, summary paragraph, then (heading, figure-or-html) sections."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='summary' id='summary'>{html.escape(summary)}</p>"]
    if meta:
        parts.append(f"<p class='meta'>{html.escape(meta)}</p>")
    first = True
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(body, go.Figure):
            parts.append(body.to_html(full_html=False, include_plotlyjs=first,
                                      config={"displaylogo": False}))
            first = False
        else:
            parts.append(body)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(path: str | Path, content: str) -> Path:
    return atomic_write(path, content.encode("utf-8"))
