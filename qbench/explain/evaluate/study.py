"""The explainers study's pipeline: every method on every model, scored and compared.

``run(cfg, out, claims)`` loads each model (any spec :func:`qbench.models.load` takes),
evaluates every method of the suite on the same images of a classification dataset
(``scenes`` test images by default; ``dataset``/``root``/``split`` and the size policy
``size`` of :mod:`qbench.data.resize`, as in every classifier study), resuming finished
(model, method) parts from ``out/parts``, and writes per_image / summary / comparisons /
sanity tables, failures.json and the gallery. Every method explains the model's predicted
class. The localisation metrics (pointing game, energy) need object masks: on a dataset
without them (``ClassificationSet.masks`` is None) they are NaN in the tables and listed as
"not available" in study.json. The recipe (presets and claims) is ``studies/explainers.py``.
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
    models: tuple[str, ...] = ("scenes-vgg-s-s0",)  # model specs (qbench.models.load)
    dataset: str = "scenes"
    root: str | None = None
    split: str | None = None  # None: val for imagefolder, else test
    size: int | None = None  # shorter side to size, centred crop (qbench.data.resize)
    labels: str = "dataset"  # the gallery's ground truth: "dataset" or "clean-prediction"
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
        """Unknown model, dataset or method names fail here, in one line, before any work."""
        import qbench.explain as explain
        import qbench.models as models
        from qbench.data import classification

        classification.check(self.dataset, self.labels, self.size)
        if not self.models:
            raise QbenchError("the study needs at least one model (--models SPEC ...)")
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


def _class_names(prov, n_out: int, ds) -> list[str]:
    """Names of a model's outputs: its own (provenance), else the dataset's when the counts
    agree, else the indices."""
    names = (getattr(prov, "extra", None) or {}).get("classes")
    if isinstance(names, list | tuple) and len(names) == n_out:
        return [str(c) for c in names]
    return list(ds.classes) if len(ds.classes) == n_out else [str(k) for k in range(n_out)]


def run(cfg: Config, out: Path, claims: Sequence[Claim] = ()) -> dict:
    """Evaluate, write the tables under ``out``; returns study.json's extra metadata."""
    import qbench.models as models
    from qbench.data import classification
    from qbench.explain.evaluate.suite import MASK_METRICS
    from qbench.metrics.task import model_label

    suite = cfg.suite()
    full = classification.load(cfg.dataset, cfg.root, cfg.split)
    n = cfg.images
    if n > len(full):
        print(f"{full.key} has {len(full)} images: using all of them (not {n})")
        n = len(full)
    idx = np.random.default_rng(cfg.seed).choice(len(full), n, replace=False)
    idx.sort()
    ds = classification.fit_size(full.subset(idx), cfg.size)
    images = ds.batch(range(len(ds))).to(cfg.device)
    masks = None if ds.masks is None else \
        torch.from_numpy(ds.masks.astype(np.float32) / 255.0).to(cfg.device)
    per_image, sanity, failures, gallery, provenance = [], [], [], {}, {}
    for spec in cfg.models:
        try:
            model, prov = models.load(spec, map_location=cfg.device)
        except models.CheckpointError as exc:  # recorded; the other models still run
            print(f"{spec}: skipped ({exc})")
            failures.append({"model": spec, "method": "", "stage": "load", "reason": str(exc)})
            continue
        model = model.to(cfg.device)
        name = model_label(spec, prov)  # the tables' model name (zoo models: the spec)
        if name in provenance:
            raise QbenchError(f"two models are both named {name!r} "
                              f"({provenance[name]['spec']} and {spec})")
        provenance[name] = {"sha256": prov.sha256, "test_acc": prov.metrics.get("test_acc"),
                            "spec": str(spec)}
        print(f"{name} ({len(suite.methods)} methods, {n} images)")
        rows, maps, san, fail = evaluate_methods(model, name, images, masks, suite,
                                                 cache=out / "parts")
        per_image.append(rows)
        sanity.append(san)
        failures += fail
        if not gallery:  # the first model's maps, for the report's gallery
            g = cfg.gallery
            with torch.no_grad():
                logits = model(images[:g])
            pred = logits.argmax(1).cpu().numpy()
            names = _class_names(prov, logits.shape[1], ds)
            shown = (torch.zeros(images[:g].shape[0], *images.shape[-2:]) if masks is None
                     else masks[:g].cpu())
            truth = ([ds.classes[k] for k in ds.labels[:g]] if cfg.labels == "dataset"
                     else [names[k] for k in pred])
            gallery = {"model": np.array(name), "methods": np.array(list(maps)),
                       "images": images[:g].cpu().numpy().astype(np.float16),
                       "masks": shown.numpy().astype(np.float16),
                       "has_masks": np.array(masks is not None),
                       "maps": np.stack([maps[m][:g] for m in maps]).astype(np.float32),
                       "labels": np.array(truth),
                       "predicted": np.array([names[k] for k in pred]),
                       "item_ids": np.array(ds.item_ids[:g])}
    if not per_image:
        raise QbenchError("no model could be loaded: "
                          + "; ".join(f["reason"] for f in failures))
    per_image = pd.concat(per_image, ignore_index=True)
    sanity = pd.concat(sanity, ignore_index=True)
    per_image.to_parquet(out / "per_image.parquet", index=False)
    summarize(per_image, seed=cfg.seed).to_parquet(out / "summary.parquet", index=False)
    sanity.to_parquet(out / "sanity.parquet", index=False)
    comps = [compare(per_image, m, a, b, metric, hib, seed=cfg.seed) for m in provenance
             for a, b, metric, hib in claims
             if {a, b} <= set(per_image.loc[per_image["model"] == m, "method"])]
    pd.DataFrame(comps).to_parquet(out / "comparisons.parquet", index=False)
    np.savez_compressed(out / "gallery.npz", **gallery)
    (out / "failures.json").write_text(json.dumps(failures, indent=2))
    truth = classification.describe(cfg.dataset, ds.split, cfg.labels, cfg.size,
                                    masks=masks is not None)
    truth["explained"] = "each model's predicted class"
    truth["not_available"] = {m: "not available: the dataset has no object masks"
                              for m in MASK_METRICS} if masks is None else {}
    config = {"models": list(provenance), "model_specs": list(cfg.models), "images": n, "dataset": cfg.dataset,
              "root": cfg.root, "split": ds.split, "size": cfg.size, "labels": cfg.labels,
              "image_indices": idx.tolist(), **asdict(suite), "device": cfg.device,
              "ground_truth": truth}
    return {"config": config, "models": provenance}
