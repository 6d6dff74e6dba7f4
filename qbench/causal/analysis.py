"""All analyses of one sweep table, written as Parquet tables a report reads (no recomputation).

:func:`analyze` writes into ``out``:

* ``table.parquet`` -- the sweep's wide table (the input, for the record);
* ``means.parquet`` -- each outcome's mean *as stored* per condition (clean included), CIs;
* ``profiles.parquet`` -- oriented change vs clean per condition (metrics and accuracy), CIs,
  and ``z``: that response centred across conditions, in units of the outcome's standard
  deviation over all rows (so FR metrics, which have no clean value, share the axis);
* ``effects.parquet`` -- DoWhy effects with refuter p-values (:mod:`qbench.causal.effects`);
* ``alignment.parquet``, ``auroc.parquet`` -- per (metric, target) with CIs
  (:mod:`qbench.causal.alignment`);
* ``comparisons.parquet`` -- each task-aligned metric minus the best conventional metric
  (alignment and AUROC), paired cluster-bootstrap CIs;
* ``attribution.parquet`` -- gcm arrow strengths (:mod:`qbench.causal.attribution`);
* ``graph.gml`` -- the stated causal graph; ``metrics.json`` -- each metric's recorded info
  and category (``task-aligned`` or ``conventional``);
* ``summary.json`` -- every metric's alignment and AUROC with CIs, the comparisons and the
  refuters' results (:mod:`qbench.causal.summary`).

A metric may be named like a node of the causal graphs (``content``, ``corruption``,
``severity``, ``image``, ``treated``, ``accuracy``): such a column is renamed ``metric:<name>``
while the analyses run (so it never collides with the factor of that name) and every table
gives it back its own name; only ``graph.gml``, where one node cannot be both, keeps the
internal name. A metric named like a key column of the table (``item``, ``label``, ``group``)
cannot be told apart from it and is refused with one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qbench.atomic import atomic_write
from qbench.causal.alignment import Alignment, WithinContentAUROC, condition_means
from qbench.causal.attribution import arrow_strengths
from qbench.causal.effects import estimate_effects
from qbench.causal.frame import (
    ACCURACY,
    KEYS,
    higher_is_better,
    metric_columns,
    oriented,
    task_columns,
    with_accuracy,
)
from qbench.causal.graph import FACTORS, IMAGE, TREATED, stated_graph, write_gml
from qbench.causal.summary import build_summary
from qbench.errors import QbenchError

ALIGNED = ("proxy-confidence", "tg-iqa")


def _write(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda f: df.to_parquet(f, index=False))


RESERVED = (*FACTORS, IMAGE, TREATED, ACCURACY)  # node names of the causal graphs


def _aliases(columns: Sequence[str], metrics: Sequence[str]) -> dict[str, str]:
    """``{metric: internal name}`` for the metrics named like a node of the causal graphs."""
    keys = [m for m in metrics if m in KEYS and m not in RESERVED]
    if keys:
        raise QbenchError(f"metric {keys[0]!r} has the name of a key column of the sweep table "
                          f"({', '.join(KEYS)}): give the scorer another name")
    taken, out = set(map(str, columns)), {}
    for m in metrics:
        if m in RESERVED:
            new = f"metric:{m}"
            while new in taken:
                new = f"metric:{new}"
            out[m] = new
            taken.add(new)
    return out


def _named_back(t: pd.DataFrame, back: Mapping[str, str]) -> pd.DataFrame:
    """``t`` with every cell (and column) holding an internal metric name given its own."""
    t = t.rename(columns={k: v for k, v in back.items() if v not in t.columns})
    for col in t.columns:
        if t[col].dtype == object or pd.api.types.is_string_dtype(t[col]):
            t[col] = t[col].map(lambda v: back.get(v, v) if isinstance(v, str) else v)
    return t


def category(metric: str, aligned: Sequence[str] = ALIGNED) -> str:
    return "task-aligned" if metric in aligned else "conventional"


def analyze(df: pd.DataFrame, info: Mapping[str, Mapping[str, Any]], out: str | Path, *,
            metrics: Sequence[str] | None = None, aligned: Sequence[str] = ALIGNED,
            n_boot: int = 1000, seed: int = 0,
            refute_accuracy_severities: Sequence[int] | None = (3, 5),
            refute_metric_severities: Sequence[int] | None = (5,),
            refute_metric_max: int | None = 40, num_simulations: int = 10,
            gcm_rows: int = 2000, gcm_options: Mapping[str, Any] | None = None,
            progress: bool = True) -> dict[str, pd.DataFrame]:
    """Run every analysis on the sweep table ``df`` and write the tables into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if metrics is None:
        metrics = [c for c in metric_columns(df) if c != ACCURACY]
    alias = _aliases(df.columns, metrics)  # metrics named like a graph node: renamed inside
    if alias:
        df = df.rename(columns=alias)
        info = {alias.get(k, k): v for k, v in info.items()}
        metrics = [alias.get(m, m) for m in metrics]
        aligned = tuple(alias.get(a, a) for a in aligned)
    back = {v: k for k, v in alias.items()}
    df = with_accuracy(df)
    metrics = [m for m in metrics if m in df and df[m].notna().any()]
    say = print if progress else (lambda *a, **k: None)
    tables: dict[str, pd.DataFrame] = {"table": df}
    say(f"analysis: {len(df)} rows, {df['item'].nunique()} items, {len(metrics)} metrics")
    tables["means"] = condition_means(df, [ACCURACY, *task_columns(df).values(), *metrics],
                                      n_boot=n_boot, seed=seed)
    align = Alignment(df, info, metrics, n_boot=n_boot, seed=seed)
    prof = align.profile_table()
    sd = {m: float(np.nanstd(oriented(df[m], higher_is_better(info, m)))) for m in metrics}
    sd.update({t: 1.0 for t in align.targets})
    scale = prof["outcome"].map(sd).replace(0.0, np.nan)
    # centred across conditions: FR metrics have no clean value, so their "change" is the
    # condition mean itself; centring puts every metric on one axis (ranks are unchanged)
    centre = prof.groupby("outcome")["change"].transform("mean")
    for col in ("change", "low", "high"):
        prof[f"z_{col}" if col != "change" else "z"] = (prof[col] - centre) / scale
    tables["profiles"] = prof
    tables["alignment"] = align.table()
    say("analysis: alignment done; AUROC")
    auroc = WithinContentAUROC(df, info, metrics, n_boot=n_boot, seed=seed)
    tables["auroc"] = auroc.table()
    for name in ("alignment", "auroc"):
        tables[name]["category"] = tables[name]["metric"].map(lambda m: category(m, aligned))
    tables["comparisons"] = _comparisons(tables, align, auroc, metrics, aligned, info)
    say("analysis: DoWhy effects and refuters")
    tables["effects"] = estimate_effects(
        df, info, metrics, refute_accuracy_severities=refute_accuracy_severities,
        refute_metric_severities=refute_metric_severities, refute_metric_max=refute_metric_max,
        num_simulations=num_simulations, n_boot=n_boot, seed=seed, progress=progress)
    tables["effects"]["num_simulations"] = num_simulations
    say("analysis: gcm arrow strengths")
    tables["attribution"] = arrow_strengths(df, info, metrics, max_rows=gcm_rows, seed=seed,
                                           **dict(gcm_options or {}))
    write_gml(stated_graph([ACCURACY, *metrics]), out / "graph.gml")
    meta = {back.get(m, m): {**dict(info.get(m, {})), "category": category(m, aligned)}
            for m in metrics}
    if back:
        tables = {name: _named_back(t, back) for name, t in tables.items()}
    for name, t in tables.items():
        _write(t, out / f"{name}.parquet")
    atomic_write(out / "metrics.json", json.dumps(meta, indent=2, default=str).encode())
    atomic_write(out / "summary.json",
                 json.dumps(build_summary(tables, meta), indent=2, allow_nan=False).encode())
    return tables


def _comparisons(tables: dict[str, pd.DataFrame], align: Alignment, auroc: WithinContentAUROC,
                 metrics: Sequence[str], aligned: Sequence[str],
                 info: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Each task-aligned metric minus the best conventional one (by point estimate, on the same
    data -- a choice that favours the conventional side), and minus the best conventional
    *no-reference* one (the aligned metrics are NR: FR metrics see the clean image)."""
    rows = []
    conventional = [m for m in metrics if m not in aligned]
    pools = {"any": conventional,
             "NR": [m for m in conventional if str(info.get(m, {}).get("kind", "")) == "NR"]}
    for measure, obj, col in (("alignment", align, "alignment"), ("auroc", auroc, "auroc")):
        for pool, names in pools.items():
            t = tables[measure]
            t = t[(t["target"] == ACCURACY) & t["metric"].isin(names)].dropna(subset=[col])
            if t.empty:
                continue
            best = str(t.sort_values(col, ascending=False)["metric"].iloc[0])
            for a in aligned:
                if a in metrics:
                    rows.append({"measure": measure, "pool": pool, **obj.difference(a, best)})
    return pd.DataFrame(rows)
