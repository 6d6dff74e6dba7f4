"""A table of the sweep's exact shape with known, planted effects -- for tests and demos.

Content: ``n_groups`` source photographs with a random difficulty ``a_g``; each corruption ``c``
has a strength ``k_c``, and severity ``s`` gives a degradation ``d = k_c * s / 5``.

* every task model is correct with probability ``sigmoid(2 + a_g - 4 d)``;
* ``aligned`` (NR, higher is better) = item base - 2 d + N(0, 0.1): tracks accuracy;
* ``aligned_low`` (NR, lower is better) = item base + 2 d + N(0, 0.1): the same, stored the
  other way round (tests that direction is applied, not abs());
* ``misaligned`` (NR, higher is better) = base - 2 d' with strengths in reverse order;
* ``noise`` (NR, higher is better): pure noise;
* ``fr`` (FR, higher is better) = 30 - 10 d + N(0, 0.5), missing on clean (as the engine does).

``truth`` gives the planted effect of each condition vs clean on each outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qbench.causal.frame import CLEAN


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def planted_table(n_items: int = 60, n_groups: int = 12,
                  strengths: dict[str, float] | None = None,
                  severities: tuple[int, ...] = (1, 2, 3, 4, 5),
                  models: tuple[str, ...] = ("m1", "m2"), seed: int = 0
                  ) -> tuple[pd.DataFrame, dict[str, dict], pd.DataFrame]:
    """``(table, scorer_info, truth)``; ``truth`` has columns corruption, severity, outcome,
    effect (planted expected change vs clean)."""
    strengths = strengths or {"blur": 1.0, "noise": 0.6, "tint": 0.15}
    names = list(strengths)
    reverse = dict(zip(names, [strengths[n] for n in reversed(names)], strict=True))
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, n_items)
    difficulty = rng.normal(0, 0.5, n_groups)[groups]
    base = rng.normal(0, 0.3, n_items)
    labels = rng.integers(0, 10, n_items)
    conds = [(CLEAN, 0)] + [(c, s) for c in names for s in severities]
    rows, truth = [], []
    for c, s in conds:
        d = 0.0 if c == CLEAN else strengths[c] * s / 5
        d_rev = 0.0 if c == CLEAN else reverse[c] * s / 5
        p = _sigmoid(2 + difficulty - 4 * d)
        block = {"item": [f"i{i:04d}" for i in range(n_items)], "label": labels,
                 "group": groups, "corruption": c, "severity": s}
        for m in models:
            block[f"task:{m}:correct"] = (rng.random(n_items) < p).astype(float)
        block["aligned"] = base - 2 * d + rng.normal(0, 0.1, n_items)
        block["aligned_low"] = base + 2 * d + rng.normal(0, 0.1, n_items)
        block["misaligned"] = base - 2 * d_rev + rng.normal(0, 0.1, n_items)
        block["noise"] = rng.normal(0, 1, n_items)
        block["fr"] = (np.full(n_items, np.nan) if c == CLEAN
                       else 30 - 10 * d + rng.normal(0, 0.5, n_items))
        rows.append(pd.DataFrame(block))
        if c != CLEAN:
            p0 = _sigmoid(2 + difficulty)
            truth += [{"corruption": c, "severity": s, "outcome": "accuracy",
                       "effect": float(np.mean(p - p0))},
                      {"corruption": c, "severity": s, "outcome": "aligned", "effect": -2 * d},
                      {"corruption": c, "severity": s, "outcome": "aligned_low", "effect": 2 * d},
                      {"corruption": c, "severity": s, "outcome": "misaligned",
                       "effect": -2 * d_rev},
                      {"corruption": c, "severity": s, "outcome": "noise", "effect": 0.0}]
    info = {n: {"name": n, "kind": "NR", "higher_is_better": True} for n in
            ("aligned", "misaligned", "noise")}
    info["aligned_low"] = {"name": "aligned_low", "kind": "NR", "higher_is_better": False}
    info["fr"] = {"name": "fr", "kind": "FR", "higher_is_better": True}
    for m in models:
        info[f"task:{m}:correct"] = {"name": f"task:{m}:correct", "kind": "task",
                                     "higher_is_better": True}
    return pd.concat(rows, ignore_index=True), info, pd.DataFrame(truth)
