"""Column conventions of the sweep's wide table, and the direction of each score.

The table has ``item, label, group, corruption, severity`` and one column per scorer: task
scorers ``task:<model>:correct|loss|confidence`` and metrics (``pyiqa:psnr``, ``tg-iqa``...).
The clean condition is ``corruption == "clean"``, ``severity == 0``.

Directions come from each scorer's recorded :class:`~qbench.metrics.MetricInfo`
(``higher_is_better``): :func:`oriented` returns the score as stored when higher is better and
its negation when lower is better, *in analysis only* and with the direction named -- never
``abs()``, and the stored table is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from qbench.errors import QbenchError

CLEAN = "clean"
KEYS = ("item", "label", "group", "corruption", "severity")
ACCURACY = "accuracy"  # per-image mean correctness over the task models


def task_columns(df: pd.DataFrame, what: str = "correct") -> dict[str, str]:
    """``{model: column}`` for the task scorers ``task:<model>:<what>`` in ``df``."""
    out = {}
    for col in df.columns:
        parts = str(col).split(":")
        if len(parts) == 3 and parts[0] == "task" and parts[2] == what:
            out[parts[1]] = col
    return out


def metric_columns(df: pd.DataFrame) -> list[str]:
    """Every scorer column that is not a task scorer (the quality metrics)."""
    return [c for c in df.columns
            if c not in KEYS and c != ACCURACY and not str(c).startswith("task:")]


def higher_is_better(info: Mapping[str, Mapping[str, Any]], name: str) -> bool:
    """The recorded direction of ``name``; a clear error when it was not recorded."""
    meta = info.get(name)
    if meta is None or "higher_is_better" not in meta:
        raise QbenchError(f"no recorded direction for scorer {name!r}: the store's scorer_info() "
                          "must hold its MetricInfo (higher_is_better)")
    return bool(meta["higher_is_better"])


def is_full_reference(info: Mapping[str, Mapping[str, Any]], name: str) -> bool:
    return str(info.get(name, {}).get("kind", "")).upper() == "FR"


def oriented(values: pd.Series | np.ndarray, hib: bool) -> np.ndarray:
    """Scores turned so that larger means better quality: as stored if ``hib``, else negated."""
    v = np.asarray(values, dtype=float)
    return v if hib else -v


def with_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus column ``accuracy``: the mean of ``task:*:correct`` over models per row."""
    cols = list(task_columns(df).values())
    if not cols:
        raise QbenchError("the table has no task:<model>:correct columns; run the sweep with "
                          "at least one task model")
    out = df.copy()
    out[ACCURACY] = out[cols].astype(float).mean(axis=1, skipna=True)
    return out


def conditions(df: pd.DataFrame) -> list[tuple[str, int]]:
    """The corrupted conditions (corruption, severity), sorted, clean excluded."""
    c = df.loc[df["corruption"] != CLEAN, ["corruption", "severity"]].drop_duplicates()
    return sorted((str(a), int(b)) for a, b in c.itertuples(index=False))


def item_matrix(df: pd.DataFrame, column: str, conds: list[tuple[str, int]],
                clean: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(items, groups, M)``: M[i, j] is ``column`` of item i under condition j (the clean
    condition first when ``clean``), NaN where missing. Items sorted by id."""
    allc = ([(CLEAN, 0)] if clean else []) + list(conds)
    key = df["corruption"].astype(str) + "\x00" + df["severity"].astype(int).astype(str)
    wide = pd.DataFrame({"item": df["item"].to_numpy(), "key": key.to_numpy(),
                         "v": df[column].astype(float).to_numpy()})
    wide = wide.pivot_table(index="item", columns="key", values="v", aggfunc="mean",
                            dropna=False)
    items = np.array(sorted(df["item"].unique()))
    wide = wide.reindex(index=items, columns=[f"{c}\x00{s}" for c, s in allc])
    groups = df.drop_duplicates("item").set_index("item")["group"].reindex(items).to_numpy()
    return items, groups, wide.to_numpy(float)
