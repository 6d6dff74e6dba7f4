"""``summary.json``: the study's headline numbers in one machine-readable file.

Per metric: its category and direction, its alignment and within-content AUROC against the
accuracy pooled over the task models (with 95% CIs) and against each model, and the paired
comparisons of the task-aligned metrics with the best conventional ones. Per DoWhy effect that
was refuted: the estimate, its CI and the three refuters' p-values, with a count of estimates
that passed all three (p > 0.05). Built from the analysis tables only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

REFUTERS = ("placebo", "random_cause", "subset")
PASS_P = 0.05


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _cell(row: pd.Series, value: str) -> dict[str, float | None]:
    return {"value": _num(row[value]), "low": _num(row["low"]), "high": _num(row["high"])}


def metric_summary(alignment: pd.DataFrame, auroc: pd.DataFrame,
                   meta: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for metric in sorted(set(alignment["metric"]) | set(auroc["metric"])):
        info = meta.get(metric, {})
        entry: dict[str, Any] = {"category": info.get("category"),
                                 "higher_is_better": info.get("higher_is_better"),
                                 "kind": info.get("kind"), "version": info.get("version")}
        for name, table in (("alignment", alignment), ("auroc", auroc)):
            rows = table[table["metric"] == metric]
            entry[name] = {r["target"]: _cell(r, name) for _, r in rows.iterrows()}
        out[metric] = entry
    return out


def refuter_summary(effects: pd.DataFrame) -> dict[str, Any]:
    cols = [f"{r}_p" for r in REFUTERS]
    refuted = effects.dropna(subset=cols, how="all") if len(effects) else effects
    rows = []
    for _, r in refuted.iterrows():
        rows.append({"outcome": r["outcome"], "corruption": r["corruption"],
                     "severity": int(r["severity"]), "estimate": _num(r["estimate"]),
                     "low": _num(r["low"]), "high": _num(r["high"]),
                     **{f"{k}_effect": _num(r.get(f"{k}_effect")) for k in REFUTERS},
                     **{f"{k}_p": _num(r.get(f"{k}_p")) for k in REFUTERS}})
    passed = sum(all(p is not None and p > PASS_P for p in (e[c] for c in cols)) for e in rows)
    return {"refuted": len(rows), "passed_all": passed, "pass_threshold_p": PASS_P,
            "estimates": rows}


def build_summary(tables: Mapping[str, pd.DataFrame],
                  meta: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The summary dict from :func:`qbench.causal.analysis.analyze`'s tables and metadata."""
    comparisons = tables.get("comparisons", pd.DataFrame())
    return {
        "metrics": metric_summary(tables["alignment"], tables["auroc"], meta),
        "comparisons": [
            {"measure": r["measure"], "pool": r["pool"], "metric": r["metric"],
             "versus": r["versus"], "target": r["target"], "difference": _num(r["difference"]),
             "low": _num(r["low"]), "high": _num(r["high"])}
            for _, r in comparisons.iterrows()],
        "refuters": refuter_summary(tables["effects"]),
    }
