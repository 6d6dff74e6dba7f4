"""The leaderboard's report: for each test set on the board, a summary paragraph from the
numbers, the table (sortable, 95% CIs, items scored and failed), a ranking with CIs and the
per-distortion breakdown.

Inputs (nothing is rescored): ``entries.json``, ``items-<testset>.json/.parquet`` and the
board's store, read through :meth:`qbench.leaderboard.board.Leaderboard.table`, the same code
``qbench leaderboard show`` prints from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from qbench.errors import QbenchError
from qbench.leaderboard.board import Leaderboard
from qbench.leaderboard.testsets import EMBEDDED
from qbench.report import figures
from qbench.report.html import note, page, write_page

# test-set kind -> (primary statistic, its label, the other statistics shown)
_LEVEL = ("consistency", "severity-rank consistency",
          [("pair_accuracy", "pair accuracy")])
_MOS = ("srcc", "SRCC", [("krcc", "KRCC"), ("plcc", "PLCC"), ("plcc_logistic", "PLCC logistic")])


def _stats_for(testset: str):
    return _LEVEL if testset == EMBEDDED else _MOS


def _overlap(a: pd.Series, b: pd.Series, key: str) -> bool:
    return bool(a[f"{key}_low"] <= b[f"{key}_high"] and b[f"{key}_low"] <= a[f"{key}_high"])


def summarise(testset: str, table: pd.DataFrame, ground_truth: str, n_refs: int) -> str:
    """A paragraph naming the leader, how sure the ranking is and what it rests on."""
    key, label, _ = _stats_for(testset)
    if table.empty:
        return f"No metric has been scored on {testset} yet."
    scored = table.dropna(subset=[key]).sort_values(key, ascending=False)
    failed = int(table.n_failed.sum())
    head = (f"On {testset} ({len(table)} metric(s); ground truth: {ground_truth}; "
            f"{n_refs} reference image(s)), ")
    if scored.empty:
        return head + f"no metric has a defined {label}; {failed} scoring attempt(s) failed."
    best = scored.iloc[0]
    ci = f"[{best[f'{key}_low']:.3f}, {best[f'{key}_high']:.3f}]"
    top = scored[scored[key] >= best[key] - 5e-4]
    if len(top) > 1:
        text = (head + f"{' and '.join(top.metric)} tie for first with {label} "
                f"{best[key]:.3f} ({best.metric}: {ci})")
    else:
        text = head + f"{best.metric} ranks first with {label} {best[key]:.3f} {ci}"
    if len(scored) > len(top):
        second = scored.iloc[len(top)]
        tie = _overlap(best, second, key)
        text += (f", ahead of {second.metric} ({second[key]:.3f}); their 95% intervals "
                 + ("overlap, so this order is not settled" if tie else "do not overlap"))
    if len(scored) > len(top) + 1:
        last = scored.iloc[-1]
        text += f". {last.metric} ranks last ({last[key]:.3f})"
    wrong = scored[scored[f"{key}_high"] < 0]
    if len(wrong):
        text += (f". {', '.join(wrong.metric)}: interval wholly below zero (orders quality "
                 "backwards)")
    text += f". Each metric rests on {int(scored.n_scored.min())}"
    if scored.n_scored.min() != scored.n_scored.max():
        text += f" to {int(scored.n_scored.max())}"
    text += f" scored items; {failed} attempt(s) failed and are counted in the table."
    contaminated = table[table.contaminated.astype(bool)]
    if len(contaminated):
        text += (f" {', '.join(contaminated.metric)} declare(s) training on {testset}: their "
                 "numbers are not a fair comparison.")
    nan = table[table[key].isna()]
    if len(nan):
        text += f" {len(nan)} metric(s) have no defined {label} (too few items)."
    return text


def _breakdown(testset: str, per: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = []
    for metric, frame in per.items():
        if frame is None or frame.empty:
            continue
        f = frame.rename(columns={"corruption": "distortion", "n_groups": "n"}).copy()
        f["metric"] = metric
        f["distortion"] = f.distortion.astype(str).str.removeprefix("kadid:")
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _table_html(testset: str, table: pd.DataFrame) -> str:
    key, label, others = _stats_for(testset)
    t = table.copy()
    t["direction"] = np.where(t.higher_is_better, "higher better", "lower better")
    t["trained on it"] = t.contaminated.astype(bool)
    cols = ["metric", "kind", "direction", key, *[k for k, _ in others], "n_scored",
            "n_failed", "trained on it"] + (["top_failure"] if t.n_failed.any() else [])
    ci = {k: (f"{k}_low", f"{k}_high") for k in [key, *[k for k, _ in others]]}
    labels = {key: f"{label} [95% CI]", **{k: f"{lb} [95% CI]" for k, lb in others},
              "n_scored": "items scored", "n_failed": "failed", "top_failure":
              "most common failure"}
    t["top_failure"] = t.top_failure.astype(str).str.slice(0, 80)
    return figures.sortable_table(t, columns=cols, ci=ci, labels=labels,
                                  table_id=f"board-{testset}")


def _testset_sections(board: Leaderboard, testset: str, n_boot: int):
    meta = json.loads((board.folder / f"items-{testset}.json").read_text())
    table, per = board.table(testset, n_boot=n_boot)
    items = board.folder / f"items-{testset}.parquet"
    if items.exists():  # a real release: items are distorted images of fewer references
        n_refs = int(pd.read_parquet(items, columns=["ref"]).ref.nunique())
    else:  # the embedded set: an item is a reference photograph
        n_refs = int(board.store.query(
            "SELECT COUNT(DISTINCT item) AS n FROM rows WHERE dataset = ?",
            [meta["dataset"]]).n[0])
    key, label, _ = _stats_for(testset)
    summary = summarise(testset, table, meta["ground_truth"], n_refs)
    sections: list = [(f"{testset}: the table", note(
        f"Ground truth: {meta['ground_truth']}. Click a header to sort. Intervals are 95% "
        "bootstrap intervals that resample reference images.") + _table_html(testset, table))]
    if not table.empty:
        sections.append((f"{testset}: ranking by {label}", figures.ranking_bars(
            table, label="metric", value=key, low=f"{key}_low", high=f"{key}_high",
            n="n_scored", group="kind", value_title=f"{label} (95% CI)")))
    breakdown = _breakdown(testset, per)
    if not breakdown.empty:
        value = "consistency" if "consistency" in breakdown else "srcc"
        order = list(table.metric)
        sections.append((f"{testset}: per distortion", figures.heatmap(
            breakdown, row="metric", col="distortion", value=value, n="n", zmin=-1, zmax=1,
            zmid=0, row_order=[m for m in order if m in set(breakdown.metric)],
            title=f"{label} within each distortion type (n = groups or items per cell)")))
    return summary, sections


def build(board_dir: str | Path, n_boot: int = 1000) -> Path:
    """Write ``board_dir/report.html`` from the board's stored rows; returns its path."""
    board = Leaderboard(board_dir)
    if not board.entries_path.exists():
        raise QbenchError(f"no leaderboard in {board_dir} (expected {board.entries_path})")
    keys = board.testsets()
    summaries, sections = [], []
    for testset in keys:
        summary, secs = _testset_sections(board, testset, n_boot)
        summaries.append(summary)
        sections += secs
    if not keys:
        summaries.append(f"{len(board.entries())} metric(s) admitted, none scored yet.")
    entries = board.entries()
    added = sorted(e.get("added", "") for e in entries.values())
    meta = (f"{len(entries)} admitted metric(s); first added {added[0] if added else 'n/a'}, "
            f"last {added[-1] if added else 'n/a'}; rebuilt from the stored rows "
            "(qbench report).")
    html = page(f"qbench leaderboard: {Path(board_dir).resolve().name}", " ".join(summaries),
                sections, meta)
    return write_page(Path(board_dir) / "report.html", html)
