"""The explainers study's pipeline: every method on every model, scored and compared.

``run(cfg, out, claims)`` loads each model, evaluates every method of the suite on the same
``scenes`` test images (resuming finished (model, method) parts from ``out/parts``), and writes
per_image / summary / comparisons / sanity tables, failures.json and the gallery. The recipe
(presets and claims) is ``studies/explainers.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qbench.errors import QbenchError
from qbench.explain.evaluate.suite import SuiteConfig, compare, evaluate_methods, summarize

Claim = tuple[str, str, str, bool]  # (method a, method b, metric, higher_is_better)


@dataclass
class Config:
    models: tuple[str, ...] = ("scenes-vgg-s-s0",)
    images: int = 8
    gallery: int = 6
    methods: tuple[str, ...] | None = None  # None: every registered method
    options: dict = field(default_factory=dict)  # per-method options
    deletion_substitutes: tuple[str, ...] = ("zero", "blur")
    insertion_substitutes: tuple[str, ...] = ("blur", "zero")
    game_step: int | None = None
    sanity_methods: tuple[str, ...] = ()
    sanity_modes: tuple[str, ...] = ("cascading",)
    sanity_images: int | None = None
    sanity_options: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """Unknown model or method names fail here, in one line, before any work."""
        import qbench.explain as explain
        import qbench.models as models

        for name in self.models:
            models.info(name)
        for name in (*(self.methods or ()), *self.options, *self.sanity_methods):
            explain.info(name)

    def suite(self) -> SuiteConfig:
        import qbench.explain as explain

        shared = {f.name for f in fields(SuiteConfig)} & {f.name for f in fields(self)}
        values = {k: getattr(self, k) for k in shared}
        values["methods"] = list(self.methods) if self.methods else explain.names()
        return SuiteConfig(**values)


def run(cfg: Config, out: Path, claims: Sequence[Claim] = ()) -> dict:
    """Evaluate, write the tables under ``out``; returns study.json's extra metadata."""
    import qbench.data as data
    import qbench.models as models

    suite = cfg.suite()
    scenes = data.load("scenes", split="test")
    idx = np.random.default_rng(cfg.seed).choice(len(scenes), cfg.images, replace=False)
    idx.sort()
    images = scenes.batch(idx).to(cfg.device)
    masks = torch.from_numpy(scenes.masks[idx].astype(np.float32) / 255.0).to(cfg.device)
    per_image, sanity, failures, gallery, provenance = [], [], [], {}, {}
    for name in cfg.models:
        try:
            model, prov = models.load(name, map_location=cfg.device)
        except models.CheckpointError as exc:  # recorded; the other models still run
            print(f"{name}: skipped ({exc})")
            failures.append({"model": name, "method": "", "stage": "load", "reason": str(exc)})
            continue
        provenance[name] = {"sha256": prov.sha256, "test_acc": prov.metrics.get("test_acc")}
        print(f"{name} ({len(suite.methods)} methods, {cfg.images} images)")
        rows, maps, san, fail = evaluate_methods(model, name, images, masks, suite,
                                                 cache=out / "parts")
        per_image.append(rows)
        sanity.append(san)
        failures += fail
        if not gallery:  # the first model's maps, for the report's gallery
            g = cfg.gallery
            with torch.no_grad():
                pred = model(images[:g]).argmax(1).cpu().numpy()
            gallery = {"model": np.array(name), "methods": np.array(list(maps)),
                       "images": images[:g].cpu().numpy().astype(np.float16),
                       "masks": masks[:g].cpu().numpy().astype(np.float16),
                       "maps": np.stack([maps[m][:g] for m in maps]).astype(np.float32),
                       "labels": np.array([scenes.classes[k] for k in scenes.labels[idx[:g]]]),
                       "predicted": np.array([scenes.classes[k] for k in pred]),
                       "item_ids": np.array([scenes.item_ids[i] for i in idx[:g]])}
    if not per_image:
        raise QbenchError("no model could be loaded: "
                          + "; ".join(f["reason"] for f in failures))
    per_image = pd.concat(per_image, ignore_index=True)
    sanity = pd.concat(sanity, ignore_index=True)
    per_image.to_parquet(out / "per_image.parquet", index=False)
    summarize(per_image, seed=cfg.seed).to_parquet(out / "summary.parquet", index=False)
    sanity.to_parquet(out / "sanity.parquet", index=False)
    comps = [compare(per_image, m, a, b, metric, hib, seed=cfg.seed) for m in cfg.models
             for a, b, metric, hib in claims
             if {a, b} <= set(per_image.loc[per_image["model"] == m, "method"])]
    pd.DataFrame(comps).to_parquet(out / "comparisons.parquet", index=False)
    np.savez_compressed(out / "gallery.npz", **gallery)
    (out / "failures.json").write_text(json.dumps(failures, indent=2))
    config = {"models": list(cfg.models), "images": cfg.images,
              "image_indices": idx.tolist(), **asdict(suite), "device": cfg.device}
    return {"config": config, "models": provenance}
