"""Do a metric's scores move with accuracy? Two measures, each with a cluster bootstrap CI.

**Alignment** (condition level). For every corrupted condition j = (corruption, severity), the
metric's *response* is the mean oriented score (higher = better quality, from the recorded
``higher_is_better``) over the items minus its clean mean (full-reference metrics have no
clean value; their response is the mean itself, which ranks conditions identically because the
item set is the same in every condition). The *accuracy profile* is the mean correctness
change vs clean. Alignment = Spearman rho between the two profiles across all conditions:
+1 means the metric orders the conditions exactly as accuracy does.

**AUROC** (image level, within content). Does the oriented score separate images a task model
classifies correctly from those it gets wrong, *among images of the same source photograph*?
Over the corrupted rows (the same rows for every metric; FR metrics are undefined on clean
images), for each content group g the Mann-Whitney count C_g of (correct, wrong) pairs ordered
correctly (ties 1/2) and the number of pairs P_g are computed; the within-content AUROC is
sum C_g / sum P_g, i.e. the per-group AUROCs averaged with weights P_g (groups without both
outcomes contribute no pairs). Chance is 0.5; a perfect predictor scores 1. The score of the
metric against ``accuracy`` is the mean of its per-model AUROCs. The pooled AUROC (ignoring
groups) is reported beside it.

Intervals: 95% percentile intervals from the same seeded cluster bootstrap over content groups
(:mod:`qbench.stats`), so metrics' samples are paired and differences get intervals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from qbench import stats
from qbench.causal.frame import (
    ACCURACY,
    CLEAN,
    conditions,
    higher_is_better,
    is_full_reference,
    item_matrix,
    metric_columns,
    oriented,
    task_columns,
    with_accuracy,
)


def profiles(df: pd.DataFrame, column: str, hib: bool, fr: bool, weights: np.ndarray,
             conds: list[tuple[str, int]]) -> np.ndarray:
    """``B x K`` oriented response per condition for each bootstrap weight row."""
    _, _, m = item_matrix(df, column, conds, clean=True)
    m = oriented(m, hib)
    means = stats.weighted_nanmean(weights, m)
    if fr or not np.isfinite(means[:, 0]).any():
        return means[:, 1:]
    return means[:, 1:] - means[:, :1]


class Alignment:
    """Bootstrap samples of the profiles and alignments of every metric, computed once."""

    def __init__(self, df: pd.DataFrame, info: Mapping[str, Mapping[str, Any]],
                 metrics: list[str] | None = None, n_boot: int = 1000, seed: int = 0) -> None:
        self.df = with_accuracy(df) if ACCURACY not in df else df
        self.info = info
        self.metrics = metrics if metrics is not None else metric_columns(df)
        self.conds = conditions(self.df)
        items, groups, _ = item_matrix(self.df, ACCURACY, self.conds)
        self.n_items, self.n_groups = len(items), len(np.unique(groups.astype(str)))
        ones = np.ones((1, len(items)))
        self.weights = np.vstack([ones, stats.item_weights(groups, n_boot, seed)])
        self.targets = {ACCURACY: ACCURACY, **task_columns(self.df)}
        self.acc = {t: profiles(self.df, c, True, False, self.weights, self.conds)
                    for t, c in self.targets.items()}
        self.resp = {m: profiles(self.df, m, higher_is_better(info, m),
                                 is_full_reference(info, m), self.weights, self.conds)
                     for m in self.metrics}
        self.rho = {(m, t): stats.rowwise_spearman(self.resp[m], self.acc[t])
                    for m in self.metrics for t in self.targets}

    def table(self) -> pd.DataFrame:
        """One row per (metric, target): rho, 95% CI, counts."""
        rows = []
        for (m, t), r in self.rho.items():
            lo, hi = stats.interval(r[1:])
            rows.append({"metric": m, "target": t, "alignment": r[0], "low": lo, "high": hi,
                         "n_items": self.n_items, "n_groups": self.n_groups,
                         "n_conditions": int(np.isfinite(self.resp[m][0]).sum()),
                         "n_boot": len(r) - 1})
        return pd.DataFrame(rows)

    def profile_table(self) -> pd.DataFrame:
        """Per (outcome, corruption, severity): oriented change vs clean with its 95% CI."""
        rows = []
        for kind, src in (("accuracy", self.acc), ("metric", self.resp)):
            for name, p in src.items():
                for j, (c, s) in enumerate(self.conds):
                    lo, hi = stats.interval(p[1:, j])
                    rows.append({"outcome": name, "kind": kind, "corruption": c, "severity": s,
                                 "change": p[0, j], "low": lo, "high": hi,
                                 "n": self.n_items})
        return pd.DataFrame(rows)

    def difference(self, a: str, b: str, target: str = ACCURACY) -> dict[str, float]:
        """Alignment of ``a`` minus that of ``b`` with a paired bootstrap CI."""
        return paired_difference(self.rho, a, b, target)


def paired_difference(samples: dict, a: str, b: str, target: str) -> dict[str, float]:
    """``a`` minus ``b`` on shared bootstrap draws (index 0 = the point estimate)."""
    d = samples[(a, target)] - samples[(b, target)]
    lo, hi = stats.interval(d[1:])
    return {"metric": a, "versus": b, "target": target, "difference": d[0], "low": lo,
            "high": hi}


def condition_means(df: pd.DataFrame, columns: list[str], n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """Mean of each column (as stored) per (corruption, severity) incl. clean, with CIs."""
    df = with_accuracy(df) if ACCURACY not in df else df
    conds = conditions(df)
    items, groups, _ = item_matrix(df, ACCURACY, conds)
    w = np.vstack([np.ones((1, len(items))), stats.item_weights(groups, n_boot, seed)])
    rows = []
    for col in columns:
        _, _, m = item_matrix(df, col, conds)
        means = stats.weighted_nanmean(w, m)
        n = np.isfinite(m).sum(axis=0)
        for j, (c, s) in enumerate([(CLEAN, 0), *conds]):
            lo, hi = stats.interval(means[1:, j])
            rows.append({"outcome": col, "corruption": c, "severity": s, "mean": means[0, j],
                         "low": lo, "high": hi, "n": int(n[j])})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- AUROC


def _pair_counts(score: np.ndarray, correct: np.ndarray, codes: np.ndarray, n_groups: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per group: concordant (correct > wrong, ties 1/2) pair count and total pair count."""
    conc, pairs = np.zeros(n_groups), np.zeros(n_groups)
    for g in range(n_groups):
        sel = codes == g
        y, s = correct[sel], score[sel]
        pos, neg = int((y == 1).sum()), int((y == 0).sum())
        if pos == 0 or neg == 0:
            continue
        ranks = rankdata(s)
        conc[g] = ranks[y == 1].sum() - pos * (pos + 1) / 2
        pairs[g] = pos * neg
    return conc, pairs


class WithinContentAUROC:
    """Bootstrap samples of the within-content AUROC of every (metric, task model)."""

    def __init__(self, df: pd.DataFrame, info: Mapping[str, Mapping[str, Any]],
                 metrics: list[str] | None = None, n_boot: int = 1000, seed: int = 0) -> None:
        self.metrics = metrics if metrics is not None else metric_columns(df)
        self.models = task_columns(df)
        rows = df[df["corruption"] != CLEAN]
        _, codes = np.unique(rows["group"].astype(str).to_numpy(), return_inverse=True)
        n_groups = int(codes.max()) + 1 if len(codes) else 0
        counts = np.vstack([np.ones((1, n_groups)), stats.group_counts(n_groups, n_boot, seed)])
        self.samples: dict[tuple[str, str], np.ndarray] = {}
        self.pooled: dict[tuple[str, str], float] = {}
        self.n: dict[tuple[str, str], int] = {}
        for m in self.metrics:
            score_all = oriented(rows[m], higher_is_better(info, m))
            for model, col in self.models.items():
                y_all = rows[col].to_numpy(float)
                ok = np.isfinite(score_all) & np.isfinite(y_all)
                s, y, c = score_all[ok], y_all[ok], codes[ok]
                conc, pairs = _pair_counts(s, y, c, n_groups)
                with np.errstate(invalid="ignore", divide="ignore"):
                    self.samples[(m, model)] = (counts @ conc) / (counts @ pairs)
                self.pooled[(m, model)] = (float(roc_auc_score(y, s))
                                           if 0 < y.sum() < len(y) else float("nan"))
                self.n[(m, model)] = int(ok.sum())
            self.samples[(m, ACCURACY)] = np.mean(
                [self.samples[(m, k)] for k in self.models], axis=0)
            self.pooled[(m, ACCURACY)] = float(np.mean([self.pooled[(m, k)]
                                                        for k in self.models]))
            self.n[(m, ACCURACY)] = int(np.mean([self.n[(m, k)] for k in self.models]))
        self.n_groups = n_groups

    def table(self) -> pd.DataFrame:
        rows = []
        for (m, t), smp in self.samples.items():
            lo, hi = stats.interval(smp[1:])
            rows.append({"metric": m, "target": t, "auroc": smp[0], "low": lo, "high": hi,
                         "pooled_auroc": self.pooled[(m, t)], "n": self.n[(m, t)],
                         "n_groups": self.n_groups, "n_boot": len(smp) - 1})
        return pd.DataFrame(rows)

    def difference(self, a: str, b: str, target: str = ACCURACY) -> dict[str, float]:
        return paired_difference(self.samples, a, b, target)
