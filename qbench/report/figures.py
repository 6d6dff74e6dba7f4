"""Figure builders shared by every report: tidy pandas DataFrames in, plotly Figures out.

Each builder takes a *tidy* table (one row per plotted number) and the names of the columns to
use, so study reports never reshape data for plotting. Conventions:

* confidence intervals are given as separate low/high columns holding the interval's *ends*
  (not half-widths), e.g. ``srcc``, ``srcc_low``, ``srcc_high``; builders draw error bars or
  bands from them and never invent an interval when the columns are absent;
* an optional count column (``n``) is shown in the hover text, because a report must say how
  many items each number rests on;
* directions are never applied here: a lower-is-better score is plotted as stored, and
  builders that sort or pick a "best" take ``higher_is_better`` explicitly.

Builders: :func:`severity_curves`, :func:`scatter_ci`, :func:`ranking_bars`,
:func:`causal_graph`, :func:`sortable_table` (an HTML string: plotly tables cannot sort),
:func:`image_gallery`, :func:`tradeoff_curve` (with :func:`pareto_front`), :func:`heatmap`.
Put them on a page with :func:`qbench.report.html.page`, which embeds plotly.js once; see
``tests/test_report_figures.py`` for a small example of each.
"""

from __future__ import annotations

import base64
import html as _html
import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "PALETTE",
    "causal_graph",
    "colour",
    "heatmap",
    "image_gallery",
    "pareto_front",
    "ranking_bars",
    "scatter_ci",
    "severity_curves",
    "sortable_table",
    "tradeoff_curve",
]

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def colour(k: int, alpha: float | None = None) -> str:
    """The k-th palette colour, as ``#rrggbb`` or, with ``alpha``, as ``rgba(...)``."""
    c = PALETTE[k % len(PALETTE)]
    if alpha is None:
        return c
    r, g, b = (int(c[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _has(df: pd.DataFrame, col: str | None) -> bool:
    return col is not None and col in df.columns


def _require(df: pd.DataFrame, *cols: str | None) -> None:
    missing = [c for c in cols if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {', '.join(missing)}; it has "
                         f"{', '.join(map(str, df.columns))}")


def _error(df: pd.DataFrame, value: str, low: str | None, high: str | None) -> dict | None:
    """Asymmetric plotly error bars from interval ends, or None without CI columns."""
    if not (_has(df, low) and _has(df, high)):
        return None
    v = df[value].to_numpy(float)
    return {"type": "data", "symmetric": False, "visible": True,
            "array": np.clip(df[high].to_numpy(float) - v, 0, None),
            "arrayminus": np.clip(v - df[low].to_numpy(float), 0, None)}


def _ci_text(df: pd.DataFrame, low: str | None, high: str | None, fmt: str) -> list[str]:
    if not (_has(df, low) and _has(df, high)):
        return [""] * len(df)
    return [f" [{lo:{fmt}}, {hi:{fmt}}]" if np.isfinite(lo) and np.isfinite(hi) else ""
            for lo, hi in zip(df[low].astype(float), df[high].astype(float), strict=True)]


def _n_text(df: pd.DataFrame, n: str | None) -> list[str]:
    if not _has(df, n):
        return [""] * len(df)
    return [f" (n={int(v)})" if pd.notna(v) else "" for v in df[n]]


def _grid(count: int, max_cols: int) -> tuple[int, int]:
    cols = max(1, min(max_cols, count))
    return math.ceil(count / cols), cols


# --------------------------------------------------------------------------- severity curves


def severity_curves(df: pd.DataFrame, *, x: str = "severity", y: str = "value",
                    series: str = "series", facet: str | None = "corruption",
                    low: str | None = "low", high: str | None = "high", n: str | None = "n",
                    mode: str = "facet", max_cols: int = 3, title: str = "",
                    y_title: str | None = None, x_title: str | None = None) -> go.Figure:
    """Value against severity, one line per ``series``, one panel (``mode="facet"``) or one
    dropdown entry (``mode="dropdown"``) per ``facet`` value; shaded bands from the
    ``low``/``high`` interval ends when those columns exist."""
    _require(df, x, y, series)
    if mode not in ("facet", "dropdown"):
        raise ValueError(f"mode must be 'facet' or 'dropdown', not {mode!r}")
    facets = sorted(df[facet].unique(), key=str) if _has(df, facet) else [None]
    names = sorted(df[series].unique(), key=str)
    colours = {s: k for k, s in enumerate(names)}
    if mode == "facet":
        rows, cols = _grid(len(facets), max_cols)
        fig = make_subplots(rows=rows, cols=cols, shared_yaxes=False,
                            subplot_titles=[str(f) for f in facets] if facet else None,
                            horizontal_spacing=0.06, vertical_spacing=min(0.12, 0.6 / rows))
    else:
        rows, cols = 1, 1
        fig = go.Figure()
    owner: list[int] = []  # facet index of each trace (for the dropdown)
    in_legend: set = set()  # facet mode: each series once, wherever it first appears
    for i, f in enumerate(facets):
        sub = df if f is None else df[df[facet] == f]
        pos = {"row": i // cols + 1, "col": i % cols + 1} if mode == "facet" else {}
        for s in names:
            g = sub[sub[series] == s].sort_values(x)
            if g.empty:
                continue
            k = colours[s]
            if _has(g, low) and _has(g, high):
                band = g.dropna(subset=[low, high])
                fig.add_trace(go.Scatter(
                    x=np.concatenate([band[x], band[x][::-1]]),
                    y=np.concatenate([band[high], band[low][::-1]]),
                    mode="lines", fill="toself", fillcolor=colour(k, 0.18), line={"width": 0},
                    hoverinfo="skip", showlegend=False, legendgroup=str(s),
                    visible=bool(mode == "facet" or i == 0)), **pos)
                owner.append(i)
            hover = [f"{s} · {'' if f is None else f} · {x}={xv}: {yv:.4g}{ci}{nn}"
                     for xv, yv, ci, nn in zip(g[x], g[y].astype(float),
                                               _ci_text(g, low, high, ".4g"), _n_text(g, n),
                                               strict=True)]
            fig.add_trace(go.Scatter(
                x=g[x], y=g[y], mode="lines+markers", name=str(s), legendgroup=str(s),
                line={"color": colour(k)}, text=hover, hovertemplate="%{text}<extra></extra>",
                showlegend=mode == "dropdown" or s not in in_legend,
                visible=bool(mode == "facet" or i == 0)), **pos)
            owner.append(i)
            in_legend.add(s)
    if mode == "dropdown" and facet:
        buttons = [{"label": str(f), "method": "update",
                    "args": [{"visible": [o == i for o in owner]}, {"title.text": title or str(f)}]}
                   for i, f in enumerate(facets)]
        fig.update_layout(updatemenus=[{"buttons": buttons, "direction": "down",
                                        "x": 1.0, "xanchor": "right", "y": 1.15,
                                        "yanchor": "top", "showactive": True}])
    fig.update_xaxes(title_text=x_title or x)
    if mode == "facet":
        fig.update_yaxes(title_text=y_title or y, col=1)
    else:
        fig.update_yaxes(title_text=y_title or y)
    fig.update_layout(title=title or None, height=max(320, 260 * rows + 90),
                      margin={"t": 80}, hovermode="closest")
    return fig


# --------------------------------------------------------------------------- scatter with CIs


def scatter_ci(df: pd.DataFrame, *, x: str, y: str, label: str | None = None,
               x_low: str | None = None, x_high: str | None = None,
               y_low: str | None = None, y_high: str | None = None,
               group: str | None = None, n: str | None = None, title: str = "",
               x_title: str | None = None, y_title: str | None = None,
               diagonal: bool = False) -> go.Figure:
    """One marker per row at (x, y) with error bars on both axes from interval-end columns,
    coloured by ``group``; ``diagonal`` draws y = x for agreement plots."""
    _require(df, x, y, label, group)
    fig = go.Figure()
    groups = sorted(df[group].unique(), key=str) if _has(df, group) else [None]
    for k, gname in enumerate(groups):
        g = df if gname is None else df[df[group] == gname]
        names = g[label].astype(str).tolist() if label else [""] * len(g)
        hover = [f"{nm}<br>{x}={xv:.4g}{xc}<br>{y}={yv:.4g}{yc}{nn}"
                 for nm, xv, xc, yv, yc, nn in zip(
                     names, g[x].astype(float), _ci_text(g, x_low, x_high, ".4g"),
                     g[y].astype(float), _ci_text(g, y_low, y_high, ".4g"), _n_text(g, n),
                     strict=True)]
        fig.add_trace(go.Scatter(
            x=g[x], y=g[y], mode="markers", name=str(gname) if gname is not None else y,
            marker={"color": colour(k), "size": 9}, text=hover,
            hovertemplate="%{text}<extra></extra>", showlegend=gname is not None,
            error_x=_error(g, x, x_low, x_high), error_y=_error(g, y, y_low, y_high)))
    if diagonal and len(df):
        lo = float(np.nanmin(df[[x, y]].to_numpy(float)))
        hi = float(np.nanmax(df[[x, y]].to_numpy(float)))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line={"dash": "dot", "color": "#999"}, hoverinfo="skip"))
    fig.update_layout(title=title or None, xaxis_title=x_title or x, yaxis_title=y_title or y,
                      height=480, hovermode="closest")
    return fig


# --------------------------------------------------------------------------- ranking bars


def ranking_bars(df: pd.DataFrame, *, label: str, value: str, low: str | None = None,
                 high: str | None = None, n: str | None = None, higher_is_better: bool = True,
                 group: str | None = None, title: str = "",
                 value_title: str | None = None) -> go.Figure:
    """Horizontal bars sorted best first (top) by ``value`` with CI error bars; NaN values
    go last. ``group`` colours bars (e.g. FR/NR) without changing the order."""
    _require(df, label, value, group)
    d = df.sort_values(value, ascending=not higher_is_better, na_position="last")
    d = d.iloc[::-1]  # plotly draws the first category at the bottom
    hover = [f"{lb}: {v:.4g}{ci}{nn}" for lb, v, ci, nn in zip(
        d[label].astype(str), d[value].astype(float), _ci_text(d, low, high, ".4g"),
        _n_text(d, n), strict=True)]
    colours = ([colour(sorted(d[group].unique(), key=str).index(v)) for v in d[group]]
               if _has(d, group) else colour(0))
    fig = go.Figure(go.Bar(
        x=d[value], y=d[label].astype(str), orientation="h", marker={"color": colours},
        error_x=_error(d, value, low, high), text=hover, textposition="none",
        hovertemplate="%{text}<extra></extra>", showlegend=False))
    if _has(d, group):  # a legend for the colours
        for k, gname in enumerate(sorted(d[group].unique(), key=str)):
            fig.add_trace(go.Bar(x=[None], y=[None], name=str(gname),
                                 marker={"color": colour(k)}, showlegend=True))
        fig.update_layout(barmode="overlay")
    fig.update_layout(title=title or None, xaxis_title=value_title or value,
                      yaxis={"categoryorder": "array", "categoryarray": list(d[label].astype(str))},
                      height=max(220, 28 * len(d) + (130 if title else 90)),
                      showlegend=_has(d, group), margin={"l": 10, "t": 60 if title else 30})
    return fig


# --------------------------------------------------------------------------- causal graph


def _layered_layout(graph) -> dict:
    """Left-to-right layout by longest path from the sources (a DAG reads as a flow)."""
    import networkx as nx

    if not nx.is_directed_acyclic_graph(graph):
        return nx.spring_layout(graph, seed=0)
    depth: dict = {}
    for node in nx.topological_sort(graph):
        preds = list(graph.predecessors(node))
        depth[node] = 1 + max(depth[p] for p in preds) if preds else 0
    layers: dict[int, list] = {}
    for node, d in depth.items():
        layers.setdefault(d, []).append(node)
    pos = {}
    for d, nodes in layers.items():  # odd layers shifted so edges that skip one stay visible
        for i, node in enumerate(sorted(nodes, key=str)):
            pos[node] = (float(d), (len(nodes) - 1) / 2 - i + 0.35 * (d % 2))
    return pos


def causal_graph(graph, *, effect: str = "effect", low: str | None = "low",
                 high: str | None = "high", layout: str = "layered", title: str = "",
                 fmt: str = "+.3f") -> go.Figure:
    """A networkx DiGraph drawn with arrows; edge attribute ``effect`` (with optional CI ends
    ``low``/``high``) sets the label and the width (|effect|, scaled to the largest), and its
    sign the colour (blue positive, red negative). Edges without an effect are thin and grey.
    ``layout``: "layered" (left to right, DAGs) or "spring" (seeded)."""
    import networkx as nx

    if layout == "layered":
        pos = _layered_layout(graph)
    elif layout == "spring":
        pos = nx.spring_layout(graph, seed=0)
    else:
        raise ValueError(f"layout must be 'layered' or 'spring', not {layout!r}")
    effects = [abs(float(d[effect])) for _, _, d in graph.edges(data=True)
               if d.get(effect) is not None and np.isfinite(float(d[effect]))]
    scale = max(effects) if effects else 1.0
    # where along each edge its label sits: edges into the same node get different fractions
    # so their labels do not pile up where the edges converge
    along = {}
    for v in graph.nodes:
        ins = sorted(graph.predecessors(v), key=lambda u: (pos[u][1], str(u)))
        for k, u in enumerate(ins):
            along[(u, v)] = 0.5 if len(ins) == 1 else 0.3 + 0.45 * k / (len(ins) - 1)
    fig = go.Figure()
    annotations, mid_x, mid_y, mid_text = [], [], [], []
    for u, v, d in graph.edges(data=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        t = along[(u, v)]
        e = d.get(effect)
        known = e is not None and np.isfinite(float(e))
        width = 1.5 + 6.0 * abs(float(e)) / scale if known and scale > 0 else 1.0
        col = ("#3b6ea5" if float(e) >= 0 else "#c0392b") if known else "#aaa"
        annotations.append({"x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y",
                            "axref": "x", "ayref": "y", "showarrow": True, "arrowhead": 3,
                            "arrowsize": 0.6, "arrowwidth": width, "arrowcolor": col,
                            "standoff": 22, "startstandoff": 22, "text": ""})
        if known:
            ci = (f" [{float(d[low]):{fmt}}, {float(d[high]):{fmt}}]"
                  if low and high and d.get(low) is not None and d.get(high) is not None else "")
            mid_x.append(x0 + t * (x1 - x0))
            mid_y.append(y0 + t * (y1 - y0))
            mid_text.append((f"{float(e):{fmt}}", f"{u} → {v}: {float(e):{fmt}}{ci}"))
            annotations.append({"x": mid_x[-1], "y": mid_y[-1], "xref": "x", "yref": "y",
                                "text": mid_text[-1][0], "showarrow": False,
                                "bgcolor": "rgba(255,255,255,0.9)", "font": {"size": 12}})
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in graph.nodes], y=[pos[n][1] for n in graph.nodes],
        mode="markers+text", text=[str(n) for n in graph.nodes], textposition="top center",
        marker={"size": 26, "color": "#f4f6f8", "line": {"color": "#333", "width": 1.5}},
        hovertemplate="%{text}<extra></extra>", showlegend=False))
    if mid_x:
        fig.add_trace(go.Scatter(  # invisible points under the labels carry the CI hover
            x=mid_x, y=mid_y, mode="markers", marker={"size": 30, "opacity": 0},
            hovertext=[h for _, h in mid_text], hoverinfo="text", showlegend=False))
    ys = [p[1] for p in pos.values()] or [0.0]
    xs = [p[0] for p in pos.values()] or [0.0]
    fig.update_xaxes(range=[min(xs) - 0.3, max(xs) + 0.3])
    fig.update_yaxes(range=[min(ys) - 0.5, max(ys) + 0.6])
    fig.update_layout(title=title or None, annotations=annotations,
                      height=int(min(700, 220 + 90 * (max(ys) - min(ys)))),
                      xaxis={"visible": False}, yaxis={"visible": False},
                      plot_bgcolor="white", margin={"l": 20, "r": 20})
    return fig


# --------------------------------------------------------------------------- sortable table

_SORTER = """<script>
if(!window.qbSort){window.qbSort=function(th){
var table=th.closest('table'),body=table.tBodies[0],idx=Array.prototype.indexOf.call(
th.parentNode.children,th),asc=th.getAttribute('data-dir')!=='asc';
Array.prototype.forEach.call(th.parentNode.children,function(h){h.removeAttribute('data-dir');});
th.setAttribute('data-dir',asc?'asc':'desc');
var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=a.cells[idx].getAttribute('data-v'),y=b.cells[idx]
.getAttribute('data-v'),fx=parseFloat(x),fy=parseFloat(y);
if(isNaN(fx)&&isNaN(fy)){return asc?x.localeCompare(y):y.localeCompare(x);}
if(isNaN(fx)){return 1;} if(isNaN(fy)){return -1;} return asc?fx-fy:fy-fx;});
rows.forEach(function(r){body.appendChild(r);});};}
</script>"""

_TABLE_STYLE = """<style>
table.qb-sortable{border-collapse:collapse;font-size:.9em;margin:.5em 0}
table.qb-sortable th,table.qb-sortable td{padding:.3em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}
table.qb-sortable .n{text-align:right}
table.qb-sortable td.n,table.qb-sortable .nw{white-space:nowrap}
table.qb-sortable th{cursor:pointer;background:#f4f6f8;user-select:none}
table.qb-sortable th[data-dir=asc]::after{content:' \\25B2'}
table.qb-sortable th[data-dir=desc]::after{content:' \\25BC'}
.qb-ci{color:#777;font-size:.8em;display:block}
.qb-wide{overflow-x:auto}
</style>"""


def _cell(value, fmt: str) -> tuple[str, str]:
    """(sort key, shown text) of one cell."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "", "n/a"
    if isinstance(value, bool | np.bool_):
        return str(int(value)), "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value)), f"{int(value)}"
    if isinstance(value, float | np.floating):
        return repr(float(value)), f"{float(value):{fmt}}"
    return str(value), str(value)


def sortable_table(df: pd.DataFrame, *, columns: Sequence[str] | None = None,
                   ci: dict[str, tuple[str, str]] | None = None,
                   labels: dict[str, str] | None = None, fmt: str = ".3f",
                   links: dict[str, str] | None = None, nowrap: Sequence[str] = (),
                   caption: str = "", table_id: str | None = None) -> str:
    """An HTML table whose headers sort on click (inline JS, no network). ``ci`` maps a value
    column to its (low, high) interval-end columns, shown as ``v [lo, hi]`` in one cell and
    sorted by v; ``labels`` renames headers; ``links`` maps a column to the column holding
    its link target; ``nowrap`` columns never wrap (dates). Integers (item counts) print
    without decimals; all text is escaped."""
    ci = ci or {}
    links = links or {}
    hidden = {c for pair in ci.values() for c in pair} | set(links.values())
    cols = list(columns) if columns is not None else [c for c in df.columns if c not in hidden]
    _require(df, *cols, *hidden)
    labels = labels or {}
    numeric = {c: c in ci or (pd.api.types.is_numeric_dtype(df[c])
                              and not pd.api.types.is_bool_dtype(df[c])) for c in cols}
    kls = {c: " class='n'" if numeric[c] else (" class='nw'" if c in nowrap else "")
           for c in cols}
    head = "".join(f"<th{kls[c]} onclick='qbSort(this)' title='sort'>"
                   f"{_html.escape(labels.get(c, c))}</th>" for c in cols)
    body = []
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            key, text = _cell(row[c], fmt)
            if c in ci and text != "n/a":
                lo, hi = (row[ci[c][0]], row[ci[c][1]])
                if pd.notna(lo) and pd.notna(hi):
                    text += f" <span class='qb-ci'>[{float(lo):{fmt}}, {float(hi):{fmt}}]</span>"
                cells.append(f"<td{kls[c]} data-v='{_html.escape(key)}'>{text}</td>")
            elif c in links and row[links[c]]:
                cells.append(f"<td{kls[c]} data-v='{_html.escape(key)}'><a href='"
                             f"{_html.escape(str(row[links[c]]))}'>{_html.escape(text)}</a></td>")
            else:
                cells.append(f"<td{kls[c]} data-v='{_html.escape(key)}'>{_html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    tid = f" id='{_html.escape(table_id)}'" if table_id else ""
    cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
    return (f"{_TABLE_STYLE}{_SORTER}<div class='qb-wide'><table class='qb-sortable'{tid}>"
            f"{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


# --------------------------------------------------------------------------- image gallery


def _png_uri(image: np.ndarray) -> str:
    """A float [0,1] (H×W, H×W×3 or 3×H×W) or uint8 image as a PNG data URI."""
    from PIL import Image

    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = (np.clip(np.nan_to_num(a.astype(np.float32)), 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _shrink(m: np.ndarray, side: int) -> np.ndarray:
    """Block-average a map to at most ``side`` cells a side (keeps pages small)."""
    m = np.asarray(m, dtype=np.float32)
    f = max(1, math.ceil(max(m.shape) / side))
    if f == 1:
        return m
    h, w = (m.shape[0] // f) * f, (m.shape[1] // f) * f
    return np.nanmean(m[:h, :w].reshape(h // f, f, w // f, f), axis=(1, 3))


def image_gallery(df: pd.DataFrame, *, image: str = "image", overlay: str | None = "map",
                  row: str = "row", col: str = "col", hover: Sequence[str] = (),
                  opacity: float = 0.55, colorscale: str = "Jet", map_side: int = 48,
                  zmin: float | None = 0.0, zmax: float | None = 1.0, title: str = "",
                  cell_px: int = 170) -> go.Figure:
    """A grid of images (rows × columns named by the ``row``/``col`` columns), each with an
    optional map (column ``overlay``: an H×W array of any resolution) drawn over it as a translucent heatmap. Hovering
    a map shows the map value at that point plus the ``hover`` columns (e.g. method, score).
    Images are embedded as PNG; maps are block-averaged to ``map_side`` cells a side."""
    _require(df, image, row, col, *hover)
    rows = list(dict.fromkeys(df[row].astype(str)))
    cols = list(dict.fromkeys(df[col].astype(str)))
    fig = make_subplots(rows=len(rows), cols=len(cols), column_titles=cols, row_titles=rows,
                        horizontal_spacing=0.01, vertical_spacing=0.02)
    shown_scale = False
    for _, r in df.iterrows():
        ri, ci = rows.index(str(r[row])) + 1, cols.index(str(r[col])) + 1
        img = np.asarray(r[image])
        hw = img.shape[1:] if img.ndim == 3 and img.shape[0] in (1, 3) else img.shape[:2]
        info = "<br>".join(f"{h}: {r[h]:.4g}" if isinstance(r[h], float | np.floating)
                           else f"{h}: {r[h]}" for h in hover)
        fig.add_trace(go.Image(source=_png_uri(img), hoverinfo="skip"), row=ri, col=ci)
        m = r[overlay] if _has(df, overlay) else None
        if m is not None and not (isinstance(m, float) and math.isnan(m)):
            small = _shrink(m, map_side)
            dy, dx = hw[0] / small.shape[0], hw[1] / small.shape[1]
            fig.add_trace(go.Heatmap(
                z=np.round(small, 4), x0=dx / 2 - 0.5, dx=dx, y0=dy / 2 - 0.5, dy=dy,
                opacity=opacity, colorscale=colorscale, zmin=zmin, zmax=zmax,
                showscale=not shown_scale, colorbar={"len": 0.6, "thickness": 12},
                hovertemplate=f"{info}<br>map: %{{z:.3f}}<extra></extra>"), row=ri, col=ci)
            shown_scale = True
        elif info:  # no map: an invisible point so the cell still has hover text
            fig.add_trace(go.Scatter(x=[hw[1] / 2], y=[hw[0] / 2], mode="markers",
                                     marker={"opacity": 0, "size": 40}, showlegend=False,
                                     hovertemplate=f"{info}<extra></extra>"), row=ri, col=ci)
    for ann in fig.layout.annotations:  # row titles on the left, clear of the colour bar
        if ann.textangle == 90:
            ann.update(x=0, xanchor="right", xshift=-6, textangle=0, align="right")
    left = 20 + 9 * max((len(r) for r in rows), default=0)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=None)
    fig.update_layout(title=title or None, height=cell_px * len(rows) + 90,
                      width=max(500, cell_px * len(cols) + left + 120),
                      margin={"l": left, "t": 70}, hovermode="closest")
    return fig


# --------------------------------------------------------------------------- trade-off curve


def pareto_front(x: np.ndarray, y: np.ndarray, higher_x_better: bool = True,
                 higher_y_better: bool = True) -> np.ndarray:
    """Boolean mask of the points no other point beats on both axes (ties are kept)."""
    sx = np.asarray(x, float) * (1 if higher_x_better else -1)
    sy = np.asarray(y, float) * (1 if higher_y_better else -1)
    keep = np.isfinite(sx) & np.isfinite(sy)
    out = np.zeros(len(sx), bool)
    for i in np.flatnonzero(keep):
        beaten = keep & (sx >= sx[i]) & (sy >= sy[i]) & ((sx > sx[i]) | (sy > sy[i]))
        out[i] = not beaten.any()
    return out


def tradeoff_curve(df: pd.DataFrame, *, x: str, y: str, label: str,
                   series: str | None = None, x_low: str | None = None,
                   x_high: str | None = None, y_low: str | None = None,
                   y_high: str | None = None, n: str | None = None,
                   higher_x_better: bool | None = None, higher_y_better: bool | None = None,
                   title: str = "", x_title: str | None = None,
                   y_title: str | None = None) -> go.Figure:
    """Points (x, y) with a text label each, joined in x order within each ``series`` (e.g.
    accuracy against a quality threshold). With both directions given, the Pareto-optimal
    points are ringed."""
    _require(df, x, y, label, series)
    fig = go.Figure()
    groups = sorted(df[series].unique(), key=str) if _has(df, series) else [None]
    for k, gname in enumerate(groups):
        g = (df if gname is None else df[df[series] == gname]).sort_values(x)
        hover = [f"{lb}<br>{x}={xv:.4g}{xc}<br>{y}={yv:.4g}{yc}{nn}" for lb, xv, xc, yv, yc, nn
                 in zip(g[label].astype(str), g[x].astype(float), _ci_text(g, x_low, x_high,
                        ".4g"), g[y].astype(float), _ci_text(g, y_low, y_high, ".4g"),
                        _n_text(g, n), strict=True)]
        fig.add_trace(go.Scatter(
            x=g[x], y=g[y], mode="lines+markers+text", text=g[label].astype(str),
            textposition="top center", hovertext=hover, hoverinfo="text",
            name=str(gname) if gname is not None else y, showlegend=gname is not None,
            line={"color": colour(k)}, marker={"size": 8},
            error_x=_error(g, x, x_low, x_high), error_y=_error(g, y, y_low, y_high)))
    if higher_x_better is not None and higher_y_better is not None and len(df):
        front = pareto_front(df[x].to_numpy(float), df[y].to_numpy(float), higher_x_better,
                             higher_y_better)
        fig.add_trace(go.Scatter(
            x=df[x][front], y=df[y][front], mode="markers", name="Pareto-optimal",
            marker={"size": 16, "symbol": "circle-open", "color": "#222", "line": {"width": 2}},
            hoverinfo="skip"))
    fig.update_layout(title=title or None, xaxis_title=x_title or x, yaxis_title=y_title or y,
                      height=480, hovermode="closest")
    return fig


# --------------------------------------------------------------------------- heat map


def heatmap(df: pd.DataFrame, *, row: str, col: str, value: str, n: str | None = None,
            low: str | None = None, high: str | None = None, fmt: str = ".2f",
            colorscale: str = "RdBu", zmin: float | None = None, zmax: float | None = None,
            zmid: float | None = None, title: str = "", row_order: Sequence | None = None,
            col_order: Sequence | None = None) -> go.Figure:
    """A rows × columns grid (e.g. method × check) coloured by ``value`` and annotated with
    it; hover adds the CI ends and the count when their columns exist. Missing cells stay
    blank."""
    _require(df, row, col, value)
    rows = list(row_order) if row_order is not None else sorted(df[row].unique(), key=str)
    cols = list(col_order) if col_order is not None else sorted(df[col].unique(), key=str)
    d = df.set_index([row, col])
    if not d.index.is_unique:
        raise ValueError(f"more than one {value} per ({row}, {col}) cell")
    z = np.full((len(rows), len(cols)), np.nan)
    text = np.full((len(rows), len(cols)), "", dtype=object)
    hover = np.full((len(rows), len(cols)), "", dtype=object)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if (r, c) not in d.index:
                continue
            cell = d.loc[(r, c)]
            v = float(cell[value])
            z[i, j] = v
            text[i, j] = f"{v:{fmt}}" if np.isfinite(v) else "n/a"
            ci = (f" [{float(cell[low]):{fmt}}, {float(cell[high]):{fmt}}]"
                  if low and high and low in d.columns and pd.notna(cell[low]) else "")
            nn = f" (n={int(cell[n])})" if n and n in d.columns and pd.notna(cell[n]) else ""
            hover[i, j] = f"{r} · {c}: {text[i, j]}{ci}{nn}"
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(c) for c in cols], y=[str(r) for r in rows], text=text,
        texttemplate="%{text}", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        colorscale=colorscale, zmin=zmin, zmax=zmax, zmid=zmid, xgap=1, ygap=1))
    fig.update_layout(title=title or None, height=max(220, 34 * len(rows) + (150 if title else 110)),
                      yaxis={"autorange": "reversed"}, margin={"l": 10, "t": 60 if title else 30})
    return fig
