"""Assemble self-contained, offline HTML pages from Plotly figures (plotly.js embedded once).

A page is: a title, a summary paragraph (``<p class='summary' id='summary'>``; the landing
page and the browser tests read it, so every report must open on one generated from its
numbers), an optional metadata line, then sections of (heading, figure or HTML). No file is
fetched from the network when the page is opened: plotly.js is inlined in the first figure
and tables sort with inline JavaScript.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from qbench.atomic import atomic_write

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em}
.summary{background:#f4f6f8;border-left:4px solid #3b6ea5;padding:.8em 1em;line-height:1.5}
.meta{color:#666;font-size:.85em}
.note{color:#555;font-size:.9em;margin:.2em 0 .6em}
"""

Section = tuple[str, "go.Figure | str"]


def figure_html(fig: go.Figure, include_plotlyjs: bool) -> str:
    """One figure as an HTML fragment (plotly.js inlined only when asked)."""
    return fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs,
                       config={"displaylogo": False, "responsive": True})


def page(title: str, summary: str, sections: Sequence[Section], meta: str = "") -> str:
    """An HTML page: title, summary paragraph, then (heading, figure-or-html) sections.

    Figures are plotly Figures (plotly.js is embedded with the first one, so a page works
    offline); any other section body is inserted as HTML as it is (e.g. a
    :func:`qbench.report.figures.sortable_table`). A heading may be empty."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='summary' id='summary'>{html.escape(summary)}</p>"]
    if meta:
        parts.append(f"<p class='meta'>{html.escape(meta)}</p>")
    first = True
    for heading, body in sections:
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(body, go.Figure):
            parts.append(figure_html(body, include_plotlyjs=first))
            first = False
        else:
            parts.append(str(body))
    parts.append("</body></html>")
    return "\n".join(parts)


def note(text: str) -> str:
    """A short explanatory line under a heading (escaped)."""
    return f"<p class='note'>{html.escape(text)}</p>"


def write_page(path: str | Path, content: str) -> Path:
    """Write the page atomically (a reader never sees half a report)."""
    return atomic_write(path, content.encode("utf-8"))
