"""Run explanation methods on one classifier and score every map with every metric.

:func:`evaluate_methods` returns tidy per-image rows (model, method, image, metric, value),
the maps themselves (for galleries) and the sanity-check rows; :func:`summarize` turns the
rows into means with bootstrap 95% intervals over images, and :func:`compare` into paired
differences between two methods (same images) with their intervals and a verdict. Failures of
one method are recorded (method, reason) and the run goes on.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    sanity_images: int | None = None  # the first k images (None: all)
    sanity_options: dict[str, dict] = field(default_factory=dict)  # per-method overrides
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


MASK_METRICS = ("pointing_game", "energy_pointing_game")  # need object masks


def _metric_values(model, images, masks, target, maps, cfg: SuiteConfig, cell: float
                   ) -> dict[str, torch.Tensor]:
    if masks is None:  # a dataset without object masks: localisation is not available (NaN)
        nan = torch.full((images.shape[0],), float("nan"))
        local = {m: nan for m in MASK_METRICS}
    else:
        local = {"pointing_game": localisation.pointing_game(maps, masks),
                 "energy_pointing_game": localisation.energy_pointing_game(maps, masks)}
    out = {
        **local,
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
                     masks: torch.Tensor | None, cfg: SuiteConfig, progress=print,
                     cache: Path | None = None
                     ) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.DataFrame, list[dict]]:
    """(per-image metric rows, maps by method, sanity rows, failures) for one model.

    ``masks`` (N×H×W object masks) may be None, for a dataset without them: the localisation
    metrics (:data:`MASK_METRICS`) are then NaN, not available.

    With ``cache`` (a folder), each method's complete result is kept there under a key of the
    model's weights, the images, the masks and the method's configuration, so an interrupted
    study resumes at the first method not yet done; a method that failed anywhere is not
    kept and is retried.
    """
    with torch.no_grad():
        target = model(images).argmax(1)  # the predicted class, explained by every method
    cell = cam_cell(model, images)
    inputs_key = _inputs_key(model, images, masks) if cache is not None else ""
    rows, maps_by_method, sanity, failures = [], {}, [], []
    for method in cfg.methods:
        part = None
        if cache is not None:
            part = MethodPart(Path(cache) / model_name / method,
                              {"inputs": inputs_key, "code": _code_key(), "method": method,
                               **_method_config(cfg, method)})
        done = part.load() if part is not None else None
        if done is not None:
            progress(f"  {method}: resumed from {part.folder}")
        else:
            done = _evaluate_method(model, model_name, method, images, masks, target, cell, cfg,
                                    progress)
            if part is not None and not done[3]:
                part.save(*done[:3])
        m_rows, m_map, m_sanity, m_failures = done
        rows += m_rows
        sanity += m_sanity
        failures += m_failures
        if m_map is not None:
            maps_by_method[method] = m_map
    return pd.DataFrame(rows), maps_by_method, pd.DataFrame(sanity), failures


def _evaluate_method(model, model_name, method, images, masks, target, cell, cfg, progress
                     ) -> tuple[list[dict], np.ndarray | None, list[dict], list[dict]]:
    """(rows, map, sanity rows, failures) of one method on one model."""
    from qbench.explain import explain

    opts = dict(cfg.options.get(method, {}))
    t0 = time.perf_counter()
    try:
        maps = explain(model, images, target, method, **opts).detach().float().cpu()
    except Exception as exc:  # recorded and skipped: one method must not stop the study
        progress(f"  {method}: FAILED ({exc})")
        return [], None, [], [{"model": model_name, "method": method, "stage": "explain",
                               "reason": f"{type(exc).__name__}: {exc}"}]
    seconds = (time.perf_counter() - t0) / images.shape[0]
    try:
        values = _metric_values(model, images, masks, target, maps, cfg, cell)
    except Exception as exc:
        progress(f"  {method}: metrics FAILED ({exc})")
        return [], maps.numpy(), [], [{"model": model_name, "method": method,
                                       "stage": "metrics",
                                       "reason": f"{type(exc).__name__}: {exc}"}]
    values["seconds_per_image"] = torch.full((images.shape[0],), seconds)
    rows = [{"model": model_name, "method": method, "image": i, "metric": metric,
             "value": float(x)} for metric, v in values.items() for i, x in enumerate(v.tolist())]
    progress(f"  {method}: {seconds:.3f} s/image")
    sanity, failures = [], []
    if method in cfg.sanity_methods:
        k = cfg.sanity_images or images.shape[0]
        sanity_opts = {**opts, **cfg.sanity_options.get(method, {})}
        for mode in cfg.sanity_modes:
            try:
                for r in randomisation.sanity_check(model, images[:k], method, target[:k],
                                                    mode=mode, seed=cfg.seed, **sanity_opts):
                    sanity.append({"model": model_name, "method": method, **r})
            except Exception as exc:
                failures.append({"model": model_name, "method": method,
                                 "stage": f"sanity/{mode}",
                                 "reason": f"{type(exc).__name__}: {exc}"})
    return rows, maps.numpy(), sanity, failures


def _inputs_key(model: nn.Module, images: torch.Tensor, masks: torch.Tensor | None) -> str:
    from qbench.data.cache import array_fingerprint

    arrays = {f"param/{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    arrays["images"] = images.detach().cpu().numpy()
    if masks is not None:
        arrays["masks"] = masks.detach().cpu().numpy()
    return array_fingerprint(arrays)


@functools.cache
def _code_key() -> str:
    """sha256 of qbench.explain's sources, read once per process (the code that runs): a
    changed explainer or metric invalidates parts."""
    import hashlib

    import qbench.explain

    h = hashlib.sha256()
    root = Path(qbench.explain.__file__).parent
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _method_config(cfg: SuiteConfig, method: str) -> dict:
    config = asdict(cfg)
    config.pop("methods")
    config["options"] = config["options"].get(method, {})
    config["sanity"] = method in config.pop("sanity_methods")
    config["sanity_options"] = config["sanity_options"].get(method, {})
    return json.loads(json.dumps(config, default=str))


class MethodPart:
    """One method's finished result on disk (rows, sanity, map) under the key it was made with;
    written to a temporary folder and renamed, so a killed run never leaves half a part."""

    def __init__(self, folder: Path, key: dict) -> None:
        self.folder, self.key = Path(folder), key

    def load(self) -> tuple[list[dict], np.ndarray, list[dict], list[dict]] | None:
        try:
            if json.loads((self.folder / "key.json").read_text()) != self.key:
                return None
            rows = pd.read_parquet(self.folder / "rows.parquet").to_dict("records")
            sanity = pd.read_parquet(self.folder / "sanity.parquet").to_dict("records")
            maps = np.load(self.folder / "map.npy")
        except (OSError, ValueError):
            return None  # absent, stale or unreadable: recompute
        return rows, maps, sanity, []

    def save(self, rows: list[dict], maps: np.ndarray, sanity: list[dict]) -> None:
        tmp = self.folder.with_name(self.folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(tmp / "rows.parquet", index=False)
        pd.DataFrame(sanity).to_parquet(tmp / "sanity.parquet", index=False)
        np.save(tmp / "map.npy", maps)
        (tmp / "key.json").write_text(json.dumps(self.key, sort_keys=True))
        shutil.rmtree(self.folder, ignore_errors=True)
        os.replace(tmp, self.folder)


def _mean(p: np.ndarray, _t: np.ndarray) -> float:
    return float(np.mean(p))


def mean_ci(values, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float, int]:
    """(mean, low, high, n) over the finite values, percentile bootstrap 95% over items."""
    from qbench.stats import MIN_ITEMS, bootstrap

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
