"""How much of the change in accuracy (and in each metric) each factor causes: ``dowhy.gcm``.

The structural causal model is :func:`qbench.causal.graph.factor_graph` -- content (source
photograph, categorical), corruption type (categorical, "clean" for the clean image) and
severity (0-5) -> accuracy (mean correctness over task models per image) and -> every metric
(oriented by its recorded direction, then z-scored so strengths are comparable across metrics);
the unobserved image is marginalised out. Mechanisms: the roots get empirical distributions and
each outcome an additive-noise model whose regressor is gradient boosting (sklearn
HistGradientBoosting, which captures the corruption x severity interaction); they are assigned
explicitly because ``gcm.auto.assign_causal_mechanisms``' model selection took ~30 s per node
on 2 cores (``auto=True`` uses it). Fitted on a seeded subsample of rows,
and ``gcm.arrow_strength`` (``num_samples`` samples of the conditional, at most ``max_runs``
runs, tolerance 2%, defaults 500 / 40 to keep a study short; one OpenMP thread, since
gradient boosting's thread pool thrashes on a shared 2-core machine) measures each arrow factor -> outcome: the change in the outcome's
variance when the arrow is removed (the parent replaced by samples from its marginal). Shares
(strength / sum over the outcome's three arrows) make outcomes comparable: a metric aligned
with accuracy puts its weight on the same factors as accuracy.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from qbench.causal.frame import (
    ACCURACY,
    higher_is_better,
    metric_columns,
    oriented,
    with_accuracy,
)
from qbench.causal.graph import FACTORS, factor_graph


def gcm_frame(df: pd.DataFrame, info: Mapping[str, Mapping[str, Any]],
              metrics: Sequence[str]) -> pd.DataFrame:
    """Observed columns of the factor graph: factors, accuracy and oriented z-scored metrics."""
    df = with_accuracy(df) if ACCURACY not in df else df
    out = pd.DataFrame({"content": df["group"].astype(str).to_numpy(),
                        "corruption": df["corruption"].astype(str).to_numpy(),
                        "severity": df["severity"].astype(float).to_numpy(),
                        ACCURACY: df[ACCURACY].astype(float).to_numpy()})
    for m in metrics:
        v = oriented(df[m], higher_is_better(info, m))
        sd = np.nanstd(v)
        out[m] = (v - np.nanmean(v)) / (sd if sd > 0 else 1.0)
    return out


def arrow_strengths(df: pd.DataFrame, info: Mapping[str, Mapping[str, Any]],
                    metrics: Sequence[str] | None = None, max_rows: int = 2000,
                    seed: int = 0, auto: bool = False, num_samples: int = 500,
                    max_runs: int = 40) -> pd.DataFrame:
    """One row per (outcome, factor): gcm arrow strength and its share of the outcome's total.

    Outcomes with missing values on the clean rows (full-reference metrics) are fitted on the
    corrupted rows only (``rows`` says how many rows each fit used).
    """
    from dowhy import gcm

    logging.getLogger("dowhy").setLevel(logging.ERROR)
    gcm.config.disable_progress_bars()
    metrics = list(metrics) if metrics is not None else metric_columns(df)
    frame = gcm_frame(df, info, metrics)
    rows = []
    for k, outcome in enumerate([ACCURACY, *metrics]):
        data = frame[[*FACTORS, outcome]].dropna()
        if len(data) > max_rows:
            data = data.sample(max_rows, random_state=seed)
        if data[outcome].nunique() < 2:
            continue
        gcm.util.general.set_random_seed(seed + k)
        scm = gcm.StructuralCausalModel(factor_graph([outcome]))
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            if auto:
                gcm.auto.assign_causal_mechanisms(scm, data,
                                                  quality=gcm.auto.AssignmentQuality.GOOD)
            else:
                for f in FACTORS:
                    scm.set_causal_mechanism(f, gcm.EmpiricalDistribution())
                scm.set_causal_mechanism(outcome, gcm.AdditiveNoiseModel(
                    gcm.ml.create_hist_gradient_boost_regressor(random_state=seed)))
            gcm.fit(scm, data, return_evaluation_summary=False)
            strength = gcm.arrow_strength(scm, outcome, num_samples_conditional=num_samples,
                                          max_num_runs=max_runs, tolerance=0.02, n_jobs=1)
        total = sum(max(float(v), 0.0) for v in strength.values())
        for (parent, _), v in strength.items():
            rows.append({"outcome": outcome, "factor": parent, "strength": float(v),
                         "share": max(float(v), 0.0) / total if total > 0 else float("nan"),
                         "rows": len(data),
                         "mechanism": str(scm.causal_mechanism(outcome).__class__.__name__)})
    return pd.DataFrame(rows)
