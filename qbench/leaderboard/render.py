"""Plain-text rendering of a leaderboard table."""

from __future__ import annotations

import json
import math

import pandas as pd


def _ci(row: pd.Series, key: str) -> str:
    v, lo, hi = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def render_table(testset: str, board, table: pd.DataFrame) -> str:
    meta = json.loads((board.folder / f"items-{testset}.json").read_text())
    lines = [f"== {testset} -- ground truth: {meta['ground_truth']}; 95% CIs resample "
             "reference images"]
    if table.empty:
        return "\n".join([*lines, "(no metrics scored)"])
    if "consistency" in table:
        cols = [("severity-rank consistency", "consistency"), ("pair accuracy", "pair_accuracy")]
    else:
        cols = [("SRCC", "srcc"), ("KRCC", "krcc"), ("PLCC", "plcc"),
                ("PLCC logistic", "plcc_logistic")]
    header = f"{'metric':22s} {'kind':4s} " + " ".join(f"{c:26s}" for c, _ in cols) + \
        f" {'scored':>7s} {'failed':>6s}"
    lines += [header, "-" * len(header)]
    for _, row in table.iterrows():
        flag = " (trained on this set)" if row["contaminated"] else ""
        lines.append(f"{row['metric']:22s} {row['kind']:4s} "
                     + " ".join(f"{_ci(row, k):26s}" for _, k in cols)
                     + f" {int(row['n_scored']):7d} {int(row['n_failed']):6d}{flag}")
        if row.get("note"):  # no statistic on too few items: say how many it needs
            lines.append(f"{'':27s}{row['note']}")
        if row["n_failed"]:
            lines.append(f"{'':27s}most common failure: {row['top_failure'][:90]}")
    return "\n".join(lines)
