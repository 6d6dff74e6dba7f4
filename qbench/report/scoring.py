"""The report of a scoring run: severity curves, severity-rank consistency and counts.

Everything is recomputed from the store's rows. The ground truth here is the known order of
severities (no human scores): a metric is consistent when, for the same image and corruption,
its direction-adjusted score falls as the severity rises.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qbench import stats
from qbench.report import figures
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


def consistency_by_scorer(rows: pd.DataFrame, directions: dict[str, int], n_boot: int = 1000,
                          seed: int = 0) -> pd.DataFrame:
    """Per (dataset, scorer): the mean over (image, corruption) groups of the within-group
    Spearman rho between -severity and the direction-adjusted score, with a 95% bootstrap CI
    that resamples images (a group's severities share its image), and the counts."""
    out = []
    rng = np.random.default_rng(seed)
    for (ds, scorer), g in rows.groupby(["dataset", "scorer"]):
        base = {item: h for item, h in g[g.corruption == CLEAN].groupby("item")}
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for (_, item), h in g[g.corruption != CLEAN].groupby(["corruption", "item"]):
            if item in base:
                h = pd.concat([h, base[item]])
            rho = stats.level_order_consistency(directions[scorer] * h.value.to_numpy(),
                                                h.severity.to_numpy(), np.zeros(len(h), int))
            if np.isfinite(rho):
                sums[item] = sums.get(item, 0.0) + rho
                counts[item] = counts.get(item, 0) + 1
        if not counts:
            continue
        s = np.array([sums[i] for i in counts])
        c = np.array([counts[i] for i in counts])
        est = stats.ratio_ci(s, c, n_boot, rng, exact_tail=True)  # one stream for all rows
        out.append({"dataset": ds, "scorer": scorer, "rho": est.value, "rho_low": est.low,
                    "rho_high": est.high, "n_items": len(c), "n_groups": int(c.sum())})
    return pd.DataFrame(out, columns=["dataset", "scorer", "rho", "rho_low", "rho_high",
                                      "n_items", "n_groups"])


def curve_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean score per (dataset, scorer, corruption, severity) with a normal 95% CI of the mean
    and the item count; the clean images (severity 0) start every corruption's curve."""
    clean = rows[rows.corruption == CLEAN]
    parts = []
    for corr in sorted(c for c in rows.corruption.unique() if c != CLEAN):
        g = pd.concat([clean.assign(corruption=corr), rows[rows.corruption == corr]])
        parts.append(g)
    if not parts:
        return pd.DataFrame(columns=["dataset", "scorer", "corruption", "severity", "mean",
                                     "low", "high", "n"])
    t = (pd.concat(parts).groupby(["dataset", "scorer", "corruption", "severity"]).value
         .agg(["mean", "std", "count"]).reset_index())
    low, high = stats.normal_interval(t["mean"], t["std"].fillna(0), t["count"])
    return t.assign(low=low, high=high).rename(columns={"count": "n"})


def _counts_table(rows: pd.DataFrame, failures: pd.DataFrame) -> str:
    ok = rows.groupby(["dataset", "scorer"]).size().rename("scored")
    bad = failures.groupby(["dataset", "scorer"]).size().rename("failed")
    reason = failures.groupby(["dataset", "scorer"]).reason.agg(
        lambda r: r.value_counts().index[0]).rename("most common failure")
    t = pd.concat([ok, bad, reason], axis=1).reset_index().fillna(
        {"scored": 0, "failed": 0, "most common failure": ""})
    t = t.astype({"scored": int, "failed": int})
    t["most common failure"] = t["most common failure"].astype(str).str.slice(0, 100)
    return figures.sortable_table(t, table_id="counts")


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
    curves = curve_table(rows)
    overall = consistency_by_scorer(rows, directions)
    sections: list = []
    for ds in sorted(rows.dataset.unique()):
        o = overall[overall.dataset == ds]
        if not o.empty:
            sections.append((f"{ds}: which metric follows the severity order", figures.ranking_bars(
                o, label="scorer", value="rho", low="rho_low", high="rho_high", n="n_groups",
                value_title="mean within-(image, corruption) Spearman rho with -severity "
                "(95% CI resampling images)")))
        sub = cons[cons.dataset == ds]
        if not sub.empty:
            sections.append((f"{ds}: severity-rank consistency", figures.heatmap(
                sub, row="scorer", col="corruption", value="rho", n="n_items", zmin=-1,
                zmax=1, zmid=0, fmt=".2f", title="mean within-image Spearman rho between "
                "-severity and the score (direction applied); hover: images per cell")))
        c = curves[curves.dataset == ds]
        if not c.empty:
            sections.append((f"{ds}: severity curves", figures.severity_curves(
                c, x="severity", y="mean", series="corruption", facet="scorer", max_cols=2,
                y_title="mean score", x_title="severity (0 = clean)",
                title="mean score vs severity, raw values in each metric's own direction "
                "(band: 95% CI of the mean)")))
    sections.append(("Items scored and failed", _counts_table(rows, failures)))
    runs = store.manifests()
    meta = "; ".join(f"run {m['run']} ({len(m['attempts'])} attempt(s), last: "
                     f"{m['attempts'][-1]['status']}, git {m['attempts'][-1]['git_revision'][:12]})"
                     for m in runs)
    html = page(f"qbench scoring report: {results_dir.name}", summarise(rows, failures, cons),
                sections, meta)
    return write_page(results_dir / "report.html", html)
