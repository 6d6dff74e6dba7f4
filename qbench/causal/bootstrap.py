"""Cluster bootstrap over content groups: resample source photographs, not rows.

Rows that share a source photograph (and the same image under 95 conditions) are not
independent; resampling whole groups keeps that dependence in the interval. Every analysis uses
the same seeded draws, so bootstrap samples of two metrics are *paired* and their difference
has a valid interval too.
"""

from __future__ import annotations

import numpy as np

CI_LEVEL = 0.95


def group_counts(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot x n_groups`` counts: how often each group is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_boot, n_groups))
    counts = np.zeros((n_boot, n_groups), dtype=float)
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts


def item_weights(groups: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot x n_items`` weights: each item weighs as often as its group was drawn."""
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    counts = group_counts(int(codes.max()) + 1 if len(codes) else 0, n_boot, seed)
    return counts[:, codes]


def interval(samples: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile interval of the finite samples (NaN, NaN when there are none)."""
    s = np.asarray(samples, float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


def weighted_nanmean(weights: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``weights (B x n) @ matrix (n x K)`` averaged over the non-NaN entries -> B x K."""
    ok = np.isfinite(matrix)
    num = weights @ np.where(ok, matrix, 0.0)
    den = weights @ ok.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
