"""DoWhy effect of each corruption at each severity, versus clean, on accuracy and on metrics.

For one condition (c, s) and one outcome, the data are the clean rows and the rows of (c, s)
of the *same* items (matched content); the treatment is binary ``treated`` = "rendered with c
at severity s". The graph is :func:`qbench.causal.graph.treatment_graph` (content -> image <-
treated, image -> outcome, image unobserved). The treatment is set by the experiment for every
item, so there is no backdoor path: DoWhy identifies the effect with an empty adjustment set,
and ``backdoor.linear_regression`` gives the difference of means, which on this balanced,
matched design equals the mean paired (per-item) change. Outcomes: ``accuracy`` (mean
correctness over the task models), each model's correctness, and each metric *as stored*
(``oriented_effect`` applies the recorded direction; ``std_effect`` divides that by the
metric's clean standard deviation so metrics are comparable). Full-reference metrics have no
clean value and get no effect here.

Refuters (DoWhy, seeded, ``num_simulations`` each, on at most ``refute_items`` items):
``placebo_treatment_refuter`` (permuted treatment; p-value tests whether 0 is consistent with
the placebo effects, so p > 0.05 passes), ``random_common_cause`` and ``data_subset_refuter``
(80%; p-value of the original estimate within the refuted estimates, p > 0.05 passes).
The 95% CI beside each estimate is the cluster bootstrap over content groups of the paired
change (:mod:`qbench.stats`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from qbench import stats
from qbench.causal.frame import (
    ACCURACY,
    conditions,
    higher_is_better,
    is_full_reference,
    item_matrix,
    metric_columns,
    task_columns,
    with_accuracy,
)
from qbench.causal.graph import TREATED, treatment_graph

REFUTERS = ("placebo_treatment_refuter", "random_common_cause", "data_subset_refuter")
_SHORT = {"placebo_treatment_refuter": "placebo", "random_common_cause": "random_cause",
          "data_subset_refuter": "subset"}


def _quiet() -> None:
    for name in ("dowhy", "dowhy.causal_model", "dowhy.causal_estimator",
                 "dowhy.causal_identifier", "dowhy.causal_refuters"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="dowhy")
    warnings.filterwarnings("ignore", category=FutureWarning)


def dowhy_effect(clean: np.ndarray, treated: np.ndarray, content: np.ndarray, outcome: str,
                 refute: bool = False, num_simulations: int = 10, seed: int = 0
                 ) -> dict[str, float]:
    """DoWhy estimate (and optional refutations) for one matched (clean, treated) pair of
    outcome vectors over the same items; ``content`` is each item's group."""
    from dowhy import CausalModel

    _quiet()
    n = len(clean)
    data = pd.DataFrame({"content": np.r_[content, content].astype(str),
                         TREATED: np.r_[np.zeros(n, bool), np.ones(n, bool)],
                         outcome: np.r_[clean, treated].astype(float)})
    model = CausalModel(data=data, treatment=TREATED, outcome=outcome,
                        graph=treatment_graph(outcome))
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    backdoor = estimand.get_backdoor_variables() or []
    est = model.estimate_effect(estimand, method_name="backdoor.linear_regression",
                                effect_modifiers=[])
    out: dict[str, Any] = {"estimate": float(est.value), "backdoor_set": ",".join(backdoor)}
    if not refute:
        return out
    for k, name in enumerate(REFUTERS):
        kw: dict[str, Any] = {"num_simulations": num_simulations, "random_seed": seed + k}
        if name == "placebo_treatment_refuter":
            kw["placebo_type"] = "permute"
        if name == "data_subset_refuter":
            kw["subset_fraction"] = 0.8
        try:
            ref = model.refute_estimate(estimand, est, method_name=name, **kw)
            out[f"{_SHORT[name]}_effect"] = float(np.asarray(ref.new_effect).ravel()[0])
            out[f"{_SHORT[name]}_p"] = float(ref.refutation_result["p_value"])
        except Exception as exc:  # recorded, the analysis goes on
            out[f"{_SHORT[name]}_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


def estimate_effects(df: pd.DataFrame, info: Mapping[str, Mapping[str, Any]],
                     metrics: Sequence[str] | None = None,
                     refute_accuracy_severities: Sequence[int] | None = None,
                     refute_metric_severities: Sequence[int] | None = (),
                     refute_metric_max: int | None = None,
                     num_simulations: int = 10, refute_items: int = 200,
                     n_boot: int = 1000, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """One row per (outcome, corruption, severity): DoWhy estimate, bootstrap CI, refuters.

    ``refute_*_severities``: severities whose conditions are refuted (None = all, () = none);
    accuracy and metrics separately because refuters are the slow part (about 2 s per
    refuted estimate with 10 simulations). ``refute_metric_max`` caps the metric refutations
    to a seeded random sample of that many (metric, condition) pairs. Per-model correctness
    gets the paired mean change (``method`` = "paired_mean", equal to DoWhy's estimate on this
    matched design, which the tests check for accuracy) to keep the run short.
    """
    df = with_accuracy(df) if ACCURACY not in df else df
    metrics = list(metrics) if metrics is not None else metric_columns(df)
    conds = conditions(df)
    outcomes: list[tuple[str, str, bool, bool]] = [(ACCURACY, "accuracy", True, True)]
    outcomes += [(col, "model", True, True) for col in task_columns(df).values()]
    outcomes += [(m, "metric", higher_is_better(info, m), False) for m in metrics
                 if not is_full_reference(info, m)]
    with threadpool_limits(limits=1):  # BLAS thread pools thrash on a shared 2-core machine
        return _estimate(df, info, metrics, outcomes, conds, refute_accuracy_severities,
                         refute_metric_severities, refute_metric_max, num_simulations,
                         refute_items, n_boot, seed, progress)


def _estimate(df, info, metrics, outcomes, conds, refute_accuracy_severities,
              refute_metric_severities, refute_metric_max, num_simulations, refute_items,
              n_boot, seed, progress) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    metric_pairs = [(name, c) for name, kind, _, _ in outcomes if kind == "metric"
                    for c in conds if refute_metric_severities is None
                    or c[1] in refute_metric_severities]
    if refute_metric_max is not None and len(metric_pairs) > refute_metric_max:
        pick = rng.choice(len(metric_pairs), refute_metric_max, replace=False)
        metric_pairs = [metric_pairs[i] for i in sorted(pick)]
    refute_metric = set(metric_pairs)
    rows = []
    total = len(outcomes) * len(conds)
    bar = tqdm(total=total, desc="effects", disable=not progress)
    for name, kind, hib, _ in outcomes:
        _, groups, m = item_matrix(df, name, conds, clean=True)
        w = stats.item_weights(groups, n_boot, seed)
        clean_sd = float(np.nanstd(m[:, 0]))
        for j, (c, s) in enumerate(conds, start=1):
            ok = np.isfinite(m[:, 0]) & np.isfinite(m[:, j])
            row = {"outcome": name, "kind": kind, "corruption": c, "severity": s,
                   "n": int(ok.sum()), "higher_is_better": hib}
            if ok.sum() >= 2 and kind == "model":
                row.update({"estimate": float(np.nanmean(m[ok, j] - m[ok, 0])),
                            "method": "paired_mean"})
            elif ok.sum() >= 2:
                refute = ((kind == "accuracy" and (refute_accuracy_severities is None
                                                   or s in refute_accuracy_severities))
                          or (kind == "metric" and (name, (c, s)) in refute_metric))
                row["method"] = "dowhy.backdoor.linear_regression"
                sel = np.flatnonzero(ok)
                if refute and len(sel) > refute_items:
                    sel = np.sort(rng.choice(sel, refute_items, replace=False))
                res = dowhy_effect(m[sel, 0], m[sel, j], groups[sel], "y", refute=refute,
                                   num_simulations=num_simulations, seed=seed)
                if len(sel) != ok.sum():  # refuted on a subsample: estimate on all items
                    res["estimate_refuted_subsample"] = res["estimate"]
                    res["estimate"] = dowhy_effect(m[ok, 0], m[ok, j], groups[ok], "y")[
                        "estimate"]
                row.update(res)
            if ok.sum() >= 2:
                diff = m[:, j] - m[:, 0]
                lo, hi = stats.interval(stats.weighted_nanmean(w, diff[:, None])[:, 0])
                row.update({"low": lo, "high": hi, "paired_mean": float(np.nanmean(diff))})
                sign = 1.0 if hib else -1.0
                row["oriented_effect"] = sign * row["estimate"]
                row["std_effect"] = (row["oriented_effect"] / clean_sd if clean_sd > 0
                                     else float("nan"))
            rows.append(row)
            bar.update()
    bar.close()
    out = pd.DataFrame(rows)
    for col in ("placebo_effect", "placebo_p", "random_cause_effect", "random_cause_p",
                "subset_effect", "subset_p"):
        if col not in out:
            out[col] = np.nan
    return out
