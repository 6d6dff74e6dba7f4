"""The report of a scoring run: severity curves, severity-rank consistency and counts.

Everything is recomputed from the store's rows. The ground truth here is the known order of
severities (no human scores): a metric is consistent when, for the same image and corruption,
its direction-adjusted score falls as the severity rises.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qbench.leaderboard import stats
from qbench.report.html import page, write_page
from qbench.store import CLEAN, Store


def severity_consistency(rows: pd.DataFrame, directions: dict[str, int]) -> pd.DataFrame:
    """Mean Spearman correlation between -severity and the direction-adjusted score, computed
    within each (dataset, item, corruption) over its severities (clean = 0 where scored); the
    same statistic as the leaderboard's severity-rank consistency."""
    out = []
    clean = rows[rows.corruption == CLEAN]
    for (ds, scorer, corr), g in rows[rows.corruption != CLEAN].groupby(
            ["dataset", "scorer", "corruption"]):
        base = clean[(clean.dataset == ds) & (clean.scorer == scorer)]
        g = pd.concat([g, base[base.item.isin(g.item)]])
        scores = directions[scorer] * g.value.to_numpy()
        rho = stats.level_order_consistency(scores, g.severity.to_numpy(), g.item.to_numpy())
        if np.isfinite(rho):
            out.append({"dataset": ds, "scorer": scorer, "corruption": corr, "rho": float(rho),
                        "n_items": int(g.item.nunique())})
    return pd.DataFrame(out, columns=["dataset", "scorer", "corruption", "rho", "n_items"])


def _curves(rows: pd.DataFrame, dataset: str) -> go.Figure:
    scorers = sorted(rows.scorer.unique())
    fig = make_subplots(rows=len(scorers), cols=1, subplot_titles=scorers,
                        vertical_spacing=min(0.08, 0.5 / max(1, len(scorers))))
    corruptions = sorted(c for c in rows.corruption.unique() if c != CLEAN)
    for r, scorer in enumerate(scorers, start=1):
        sub = rows[rows.scorer == scorer]
        clean = sub[sub.corruption == CLEAN]
        for k, corr in enumerate(corruptions):
            g = pd.concat([clean, sub[sub.corruption == corr]])
            stats = g.groupby("severity").value.agg(["mean", "std", "count"]).reset_index()
            half = 1.96 * stats["std"].fillna(0) / np.sqrt(stats["count"])
            fig.add_trace(go.Scatter(
                x=stats.severity, y=stats["mean"], mode="lines+markers", name=corr,
                legendgroup=corr, showlegend=(r == 1),
                line={"color": _palette(k)},
                error_y={"type": "data", "array": half, "visible": True},
                customdata=stats["count"],
                hovertemplate=f"{corr} s=%{{x}}: %{{y:.4g}} (n=%{{customdata}})<extra></extra>",
            ), row=r, col=1)
        fig.update_xaxes(title_text="severity (0 = clean)", row=r, col=1)
    fig.update_layout(height=260 * len(scorers) + 80, title=f"{dataset}: mean score vs "
                      "severity (95% CI of the mean)")
    return fig


def _palette(k: int) -> str:
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    return colours[k % len(colours)]


def _consistency_heatmap(cons: pd.DataFrame, dataset: str) -> go.Figure:
    sub = cons[cons.dataset == dataset]
    table = sub.pivot(index="scorer", columns="corruption", values="rho")
    fig = go.Figure(go.Heatmap(z=table.values, x=list(table.columns), y=list(table.index),
                               zmin=-1, zmax=1, colorscale="RdBu", text=np.round(table.values, 2),
                               texttemplate="%{text}",
                               hovertemplate="%{y} / %{x}: rho=%{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"{dataset}: severity-rank consistency (mean within-image Spearman "
                      "rho, direction applied)", height=120 + 40 * len(table.index))
    return fig


def _counts_table(rows: pd.DataFrame, failures: pd.DataFrame) -> go.Figure:
    ok = rows.groupby(["dataset", "scorer"]).size().rename("scored")
    bad = failures.groupby(["dataset", "scorer"]).size().rename("failed")
    reason = failures.groupby(["dataset", "scorer"]).reason.agg(
        lambda r: r.value_counts().index[0]).rename("most common failure")
    t = pd.concat([ok, bad, reason], axis=1).reset_index().fillna(
        {"scored": 0, "failed": 0, "most common failure": ""})
    fig = go.Figure(go.Table(
        header={"values": list(t.columns)},
        cells={"values": [t[c].astype(int) if c in ("scored", "failed") else t[c]
                          for c in t.columns]}))
    fig.update_layout(height=120 + 30 * len(t))
    return fig


def summarise(rows: pd.DataFrame, failures: pd.DataFrame, cons: pd.DataFrame) -> str:
    """One paragraph answering "which metric tracks corruption severity?" from the numbers."""
    if rows.empty:
        return f"No scores are stored yet; {len(failures)} attempts failed."
    parts = []
    for ds, sub in cons.groupby("dataset"):
        per = sub.groupby("scorer").rho.mean().sort_values(ascending=False)
        n_items = rows[rows.dataset == ds].item.nunique()
        corrs = sub.corruption.nunique()
        best = [str(k) for k, v in per.items() if v >= per.iloc[0] - 5e-4]
        lead = (f"{best[0]} follows" if len(best) == 1
                else f"{', '.join(best[:-1])} and {best[-1]} tie in following")
        text = (f"On {ds} ({n_items} images, {corrs} corruption types), {lead} "
                f"the severity order most consistently "
                f"(mean within-image Spearman rho {per.iloc[0]:.3f})")
        if len(per) > 1:
            text += f" and {per.index[-1]} least ({per.iloc[-1]:.3f})"
        worst = sub.sort_values("rho").iloc[0]
        text += (f"; the weakest pair is {worst.scorer} under {worst.corruption} "
                 f"(rho {worst.rho:.3f}).")
        parts.append(text)
    total = len(rows) + len(failures)
    parts.append(f"{len(rows)} of {total} scores were computed and {len(failures)} failed "
                 "and were recorded with their reason; ground truth is the known severity "
                 "order, not human opinion scores.")
    return " ".join(parts)


def build(results_dir: str | Path) -> Path:
    """Write ``report.html`` for the store in ``results_dir``; returns its path."""
    results_dir = Path(results_dir)
    store = Store(results_dir / "store")
    rows, failures = store.rows(), store.failures()
    info = store.scorer_info()
    directions = {s: 1 if info.get(s, {}).get("higher_is_better", True) else -1
                  for s in rows.scorer.unique()}
    cons = severity_consistency(rows, directions)
    sections: list = []
    for ds in sorted(rows.dataset.unique()):
        if ds in set(cons.dataset):
            sections.append((f"{ds}: severity-rank consistency", _consistency_heatmap(cons, ds)))
        sections.append((f"{ds}: severity curves", _curves(rows[rows.dataset == ds], ds)))
    sections.append(("Items scored and failed", _counts_table(rows, failures)))
    runs = store.manifests()
    meta = "; ".join(f"run {m['run']} ({len(m['attempts'])} attempt(s), last: "
                     f"{m['attempts'][-1]['status']}, git {m['attempts'][-1]['git_revision'][:12]})"
                     for m in runs)
    html = page(f"qbench scoring report: {results_dir.name}", summarise(rows, failures, cons),
                sections, meta)
    return write_page(results_dir / "report.html", html)
