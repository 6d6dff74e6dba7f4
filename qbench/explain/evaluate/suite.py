"""Run explanation methods on one classifier and score every map with every metric.

:func:`evaluate_methods` returns tidy per-image rows (model, method, image, metric, value),
the maps themselves (for galleries) and the sanity-check rows; :func:`summarize` turns the
rows into means with bootstrap 95% intervals over images, and :func:`compare` into paired
differences between two methods (same images) with their intervals and a verdict. Failures of
one method are recorded (method, reason) and the run goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from qbench.explain.evaluate import complexity, faithfulness, localisation, randomisation


@dataclass
class SuiteConfig:
    methods: list[str]
    options: dict[str, dict] = field(default_factory=dict)  # per-method options
    deletion_substitutes: tuple[str, ...] = ("zero", "blur")
    insertion_substitutes: tuple[str, ...] = ("blur", "zero")
    cds_fraction: float = 0.2
    game_step: int | None = None  # pixels per deletion/insertion step (None: the image side)
    sanity_methods: tuple[str, ...] = ()
    sanity_modes: tuple[str, ...] = ("cascading",)
    seed: int = 0


def cam_cell(model: nn.Module, images: torch.Tensor) -> float:
    """Input side / side of the model's CAM layer output (the CAM grid's cell, in px)."""
    from qbench.explain.layers import resolve_layer

    layer = resolve_layer(model, None)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad():
            model(images[:1])
    finally:
        handle.remove()
    return images.shape[-1] / seen[0].shape[-1]


def _metric_values(model, images, masks, target, maps, cfg: SuiteConfig, cell: float
                   ) -> dict[str, torch.Tensor]:
    out = {
        "pointing_game": localisation.pointing_game(maps, masks),
        "energy_pointing_game": localisation.energy_pointing_game(maps, masks),
        "gini": complexity.gini(maps),
        "entropy": complexity.entropy(maps),
        "total_variation": complexity.total_variation(maps),
        "fine_detail": complexity.fine_detail(maps, cell),
    }
    for sub in cfg.deletion_substitutes:
        out[f"deletion_auc_{sub}"] = faithfulness.deletion_auc(
            model, images, maps, target, substitute=sub, step=cfg.game_step, seed=cfg.seed)
    for sub in cfg.insertion_substitutes:
        out[f"insertion_auc_{sub}"] = faithfulness.insertion_auc(
            model, images, maps, target, substitute=sub, step=cfg.game_step, seed=cfg.seed)
    out.update(faithfulness.class_distortion(model, images, maps, target,
                                             fraction=cfg.cds_fraction, seed=cfg.seed))
    return out


def evaluate_methods(model: nn.Module, model_name: str, images: torch.Tensor,
                     masks: torch.Tensor, cfg: SuiteConfig, progress=print
                     ) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.DataFrame, list[dict]]:
    """(per-image metric rows, maps by method, sanity rows, failures) for one model."""
    from qbench.explain import explain

    with torch.no_grad():
        target = model(images).argmax(1)  # the predicted class, explained by every method
    cell = cam_cell(model, images)
    rows, maps_by_method, sanity, failures = [], {}, [], []
    for method in cfg.methods:
        opts = dict(cfg.options.get(method, {}))
        t0 = time.perf_counter()
        try:
            maps = explain(model, images, target, method, **opts).detach().float().cpu()
        except Exception as exc:  # recorded and skipped: one method must not stop the study
            failures.append({"model": model_name, "method": method, "stage": "explain",
                             "reason": f"{type(exc).__name__}: {exc}"})
            progress(f"  {method}: FAILED ({exc})")
            continue
        seconds = (time.perf_counter() - t0) / images.shape[0]
        maps_by_method[method] = maps.numpy()
        try:
            values = _metric_values(model, images, masks, target, maps, cfg, cell)
        except Exception as exc:
            failures.append({"model": model_name, "method": method, "stage": "metrics",
                             "reason": f"{type(exc).__name__}: {exc}"})
            progress(f"  {method}: metrics FAILED ({exc})")
            continue
        values["seconds_per_image"] = torch.full((images.shape[0],), seconds)
        for metric, v in values.items():
            for i, x in enumerate(v.tolist()):
                rows.append({"model": model_name, "method": method, "image": i,
                             "metric": metric, "value": float(x)})
        progress(f"  {method}: {seconds:.3f} s/image")
        if method in cfg.sanity_methods:
            for mode in cfg.sanity_modes:
                try:
                    for r in randomisation.sanity_check(model, images, method, target,
                                                        mode=mode, seed=cfg.seed, **opts):
                        sanity.append({"model": model_name, "method": method, **r})
                except Exception as exc:
                    failures.append({"model": model_name, "method": method,
                                     "stage": f"sanity/{mode}",
                                     "reason": f"{type(exc).__name__}: {exc}"})
    return pd.DataFrame(rows), maps_by_method, pd.DataFrame(sanity), failures


def _mean(p: np.ndarray, _t: np.ndarray) -> float:
    return float(np.mean(p))


def mean_ci(values, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float, int]:
    """(mean, low, high, n) over the finite values, percentile bootstrap 95% over items."""
    from qbench.leaderboard.stats import MIN_ITEMS, bootstrap

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    if v.size < MIN_ITEMS:
        return float(v.mean()), float("nan"), float("nan"), int(v.size)
    est = bootstrap(_mean, v, v, None, n_boot=n_boot, seed=seed)
    return est.value, est.low, est.high, est.n


def summarize(rows: pd.DataFrame, keys=("model", "method", "metric"), n_boot: int = 1000,
              seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap 95% CI over images of every (model, method, metric)."""
    out = []
    for key, g in rows.groupby(list(keys), sort=False):
        value, low, high, n = mean_ci(g["value"].to_numpy(), n_boot, seed)
        out.append({**dict(zip(keys, key, strict=True)), "value": value, "low": low,
                    "high": high, "n": n})
    return pd.DataFrame(out)


def compare(rows: pd.DataFrame, model: str, a: str, b: str, metric: str,
            higher_is_better: bool, n_boot: int = 1000, seed: int = 0) -> dict:
    """Paired difference a − b of ``metric`` over the images both methods scored, its
    bootstrap 95% CI, and a verdict for a: ``better`` / ``worse`` (CI excludes 0) or
    ``no clear difference``."""
    sel = rows[(rows["model"] == model) & (rows["metric"] == metric)]
    va = sel[sel["method"] == a].set_index("image")["value"]
    vb = sel[sel["method"] == b].set_index("image")["value"]
    d = (va - vb).dropna()
    value, low, high, n = mean_ci(d.to_numpy(), n_boot, seed)
    verdict = "n/a"
    if np.isfinite(low) and np.isfinite(high):
        better = low > 0 if higher_is_better else high < 0
        worse = high < 0 if higher_is_better else low > 0
        verdict = "better" if better else "worse" if worse else "no clear difference"
    return {"model": model, "a": a, "b": b, "metric": metric,
            "higher_is_better": higher_is_better, "diff": value, "low": low, "high": high,
            "n": n, "mean_a": float(va.mean()) if len(va) else float("nan"),
            "mean_b": float(vb.mean()) if len(vb) else float("nan"), "verdict": verdict}
