"""The corruption sweep: task-model performance and IQA scores on the same corrupted images.

``run(folder, models, metrics, ...)`` scores the first ``n_images`` test images of a
classification dataset (chosen so every class appears: classes are taken round-robin in index
order, then sorted by index) clean and under every ImageNet-C corruption x severity, with

* every model's task scorers ``task:M:correct`` (0/1), ``task:M:loss`` (cross-entropy,
  lower is better) and ``task:M:confidence`` (max softmax) -- a model is any spec
  :func:`qbench.models.load` takes (zoo name, ``.pt`` file, ``torchvision:ARCH[=PATH]``,
  ``module:attr``...), named ``M`` by :func:`qbench.metrics.task.model_label` -- compared with the dataset's labels
  or, with ``labels="clean-prediction"``, with the model's own prediction on the clean image
  (for unlabelled images: "correct" = agrees with the clean prediction), and
* every IQA metric given; full-reference metrics compare with the clean image (the engine's
  rule), so they are not scored -- NaN in :func:`table` -- on the clean condition,

into ``Store(folder / "store")``. Images go through the size policy of
:mod:`qbench.data.resize` (``size``: shorter side to S, centred S x S crop; without it they must
share one size). The run id is a hash of the whole configuration (models with their spec and
weights sha256, ground truth, size, metrics, grid, images), so calling ``run`` again with the same
arguments recomputes nothing (the engine skips finished keys) and a killed sweep resumes. Each
item's label and content group (``ClassificationSet.groups``: for ``scenes`` the background
photograph; a dataset without groups makes each item its own group) are kept beside the
store in ``items/<run>.parquet`` for :func:`table`.

Corruptions default to all 19 ImageNet-C corruptions (15 benchmark + 4 extra). Severity
tables: ``scenes`` (64 px) and ImageNet-style folders use the ``imagenet`` table, CIFAR-10 the
``cifar`` table (CIFAR-10-C, made for 32 px). qbench scales the *spatial* parameters (blur
radii and sigmas, glass-blur and elastic displacements, snow and spatter geometry) by
``min(H, W) / 224`` (imagenet table) or ``/ 32`` (cifar table); noise levels, JPEG quality,
zoom, pixelate and colour parameters are used as published. So at 64 px the ``imagenet``
table gives ImageNet-C's noise and photometric strengths with geometry shrunk 3.5x; there is no
Tiny-ImageNet-C table (``make_tinyimagenet_c.py``) in qbench -- pass ``table="cifar"`` for the
milder CIFAR-10-C strengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qbench.atomic import atomic_write
from qbench.data import classification
from qbench.data.base import ClassificationSet
from qbench.data.classification import default_split  # noqa: F401  (part of this API)
from qbench.engine import grid, score
from qbench.errors import QbenchError
from qbench.metrics.task import model_label
from qbench.store import CLEAN, Store

ITEM_COLUMNS = ["item", "label", "group", "corruption", "severity"]


def imagenet_c_names() -> list[str]:
    """The 19 ImageNet-C corruptions (15 benchmark + 4 extra), in the registry's order."""
    from qbench.corrupt.registry import REGISTRY

    return [n for n, c in REGISTRY.items() if c.source == "imagenet-c"]


def stratified_first(labels: np.ndarray, n: int | None) -> np.ndarray:
    """Indices of ``n`` items taken class by class in turn (index order within each class),
    sorted: every class appears as soon as ``n`` >= the number of classes."""
    labels = np.asarray(labels)
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    per_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    picked: list[int] = []
    for rank in range(max(len(p) for p in per_class)):
        for p in per_class:
            if rank < len(p) and len(picked) < n:
                picked.append(int(p[rank]))
    return np.sort(np.asarray(picked, dtype=np.int64))


def default_table(dataset: str) -> str:
    return "cifar" if dataset == "cifar10" else "imagenet"


def load_images(dataset: str, n_images: int | None, root: str | None = None,
                split: str | None = None, options: dict | None = None,
                size: int | None = None) -> ClassificationSet:
    """The swept subset of ``dataset``'s test (ImageNet folders: val) split, through the size
    policy (:mod:`qbench.data.resize`: ``size`` given, shorter side to ``size`` and centred
    crop; else the images must share one size, or one line says to pass ``--size``)."""
    ds = classification.load(dataset, root, split, options)
    return classification.fit_size(ds.subset(stratified_first(ds.labels, n_images)), size)


def clean_predictions(model, ds: ClassificationSet, device: str = "cpu", batch_size: int = 16,
                      first_only: bool = False) -> tuple[torch.Tensor, int | None]:
    """Each item's top-1 class on its clean image (-1 where it cannot be read) and the model's
    number of outputs. The batches are made as the engine makes them (the same items per
    forward, one intra-op thread), so the logits are the engine's, bit for bit;
    ``first_only``: stop after the first batch that could be read."""
    from qbench.engine import guard

    preds = torch.full((len(ds),), -1, dtype=torch.long)
    n_out = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for start in range(0, len(ds), batch_size):
                todo = list(range(start, min(start + batch_size, len(ds))))
                while todo:
                    got = guard.load(ds, todo)
                    if got.images is not None:
                        logits = model(got.images.to(device)).float().cpu()
                        if logits.ndim != 2:
                            raise QbenchError("a task model must return N x classes logits, "
                                              f"not shape {tuple(logits.shape)}")
                        preds[got.items] = logits.argmax(1)
                        n_out = logits.shape[1]
                        if first_only:
                            return preds, n_out
                    todo = got.later
    finally:
        torch.set_num_threads(threads)
    return preds, n_out


def _check_classes(spec: str, prov, n_out: int | None, ds: ClassificationSet) -> None:
    """A model whose outputs are not the dataset's classes cannot be scored against its
    labels: one line, suggesting ``--labels clean-prediction``. The model side's own check
    (:func:`qbench.models.specs.check_classes`, from the provenance) runs first when there is
    one; the count of the logits the model actually returns is checked in any case."""
    try:
        from qbench.models.specs import check_classes
    except ImportError:
        check_classes = None
    if check_classes is not None:
        check_classes(prov, len(ds.classes), ds.key)
    if n_out is not None and n_out != len(ds.classes):
        raise QbenchError(f"model {spec} has {n_out} outputs but {ds.key} has "
                          f"{len(ds.classes)} classes: its predictions are not the dataset's "
                          "labels; pass --labels clean-prediction to score agreement with "
                          "the model's own predictions on the clean images instead")


def _model_scorers(models: Sequence[str], device: str, ds: ClassificationSet | None = None,
                   labels: str = "dataset", batch_size: int = 16):
    """The task scorers of every model spec, ``{label: weights sha256}`` and
    ``{label: spec}``; with ``ds``, the class counts are checked (``labels="dataset"``) or
    each model's clean predictions become its targets (``labels="clean-prediction"``)."""
    from qbench.metrics.task import scorers_for
    from qbench.models import load

    scorers, shas, specs = [], {}, {}
    for spec in models:
        model, prov = load(spec)
        name = model_label(spec, prov)
        if name in shas:
            raise QbenchError(f"two models are both named {name!r} in the sweep "
                              f"({specs[name]} and {spec}); give each its own name")
        ds_name = prov.extra.get("dataset")
        trained_on = (f"{ds_name}/train",) if ds_name else ()
        targets = None
        if ds is not None:
            model = model.eval().to(device)
            clean = labels == "clean-prediction"
            preds, n_out = clean_predictions(model, ds, device, batch_size,
                                            first_only=not clean)
            if clean:
                targets = preds
            else:
                _check_classes(spec, prov, n_out, ds)
        scorers += scorers_for(name, model=model, device=device, trained_on=trained_on,
                               targets=targets)
        shas[name] = prov.sha256
        specs[name] = str(spec)
    return scorers, shas, specs


def _metric_scorers(metrics: Sequence[str], device: str):
    from qbench.metrics import create

    scorers, skipped = [], {}
    for name in metrics:
        try:
            scorers.append(create(name, device=device))
        except Exception as exc:  # recorded in the run manifest, the sweep goes on
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            print(f"sweep: metric {name} skipped: {skipped[name]}", flush=True)
    return scorers, skipped


def run(folder: str | Path, models: Sequence[str], metrics: Sequence[str],
        n_images: int | None = None, corruptions: Sequence[str] | None = None,
        severities: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0, dataset: str = "scenes",
        root: str | None = None, device: str = "cpu", progress: bool = True,
        table: str | None = None, split: str | None = None,
        data_options: dict | None = None, workers: int | None = None,
        batch_size: int = 16, size: int | None = None,
        labels: str = "dataset") -> tuple[Store, str]:
    """Score the sweep into ``folder/store``; returns the store and the run id.

    ``models`` are model specs (anything :func:`qbench.models.load` takes). ``size``: the
    size policy of :mod:`qbench.data.resize`. ``labels``: the task scorers' ground truth,
    ``dataset`` (each model's class count must match the dataset's) or ``clean-prediction``
    (each model's own top-1 class on the clean image, see :mod:`qbench.metrics.task`); both
    are recorded in the run's configuration, with each model's spec and weights sha256.

    ``table`` (severity table), ``split``, ``data_options`` (loader options, e.g. scenes
    ``size``/``seed``), ``workers`` (metrics side by side, engine default: the cores) and
    ``batch_size`` are optional extras beyond the contract; the defaults are documented above.
    """
    classification.check(dataset, labels, size)
    corruptions = list(corruptions) if corruptions is not None else imagenet_c_names()
    table = table or default_table(dataset)
    ds = load_images(dataset, n_images, root, split, data_options, size)
    model_scorers, shas, specs = _model_scorers(models, device, ds, labels, batch_size)
    metric_scorers, skipped = _metric_scorers(metrics, device)
    scorers = model_scorers + metric_scorers
    store = Store(Path(folder) / "store")
    config = {"job": "sweep", "dataset": dataset, "split": ds.split, "root": root,
              "data_options": data_options or {}, "n_images": n_images, "size": size,
              "items": len(ds), "corruptions": corruptions, "severities": list(severities),
              "table": table, "seed": seed, "models": shas, "metrics": list(metrics),
              # a retrained learned metric (a new version) is a new run, never stale rows
              "metric_versions": {m.info.name: m.info.version for m in metric_scorers}}
    if models:  # what the task scorers compare with, and what each model is
        config.update(labels=labels, model_specs=specs)
    rid = store.begin_run(config, seeds=[seed])
    _write_items(store, rid, ds)
    store.record_scorers(rid, [asdict(s.info) for s in scorers])
    # clean-prediction: the engine hands the scorers item positions, each task model looks
    # up its own clean prediction; the item table above keeps the dataset's labels
    engine_ds = replace(ds, labels=np.arange(len(ds), dtype=np.int64)) \
        if models and labels == "clean-prediction" else ds
    summary = score(store, rid, engine_ds, grid(corruptions, severities), scorers, seed=seed,
                    table=table, batch_size=batch_size, progress=progress,
                    workers=workers)  # the engine holds the run's lock
    store.end_run(rid, "finished", totals=asdict(summary), skipped_metrics=skipped)
    return store, rid


def _items_path(store: Store, rid: str) -> Path:
    return store.root / "items" / f"{rid}.parquet"


def _write_items(store: Store, rid: str, ds: ClassificationSet) -> None:
    # an item of a dataset without content groups is its own group (its own photograph)
    groups = ds.groups if ds.groups is not None else np.arange(len(ds))
    frame = pd.DataFrame({"item": ds.item_ids, "label": np.asarray(ds.labels, np.int64),
                          "group": np.asarray(groups, np.int64)})
    path = _items_path(store, rid)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: frame.to_parquet(f, index=False))


def table(store: Store, run: str) -> pd.DataFrame:
    """Wide table: one row per (item, condition) with ``item, label, group, corruption,
    severity`` and one column per scorer (NaN where a score is missing or failed).

    Rows are sorted clean first, then by corruption, severity and item; scorer columns are
    sorted by name (task scorers ``task:...`` after IQA ones such as ``pyiqa:psnr``)."""
    long = store.rows(run)
    items_file = _items_path(store, run)
    if not items_file.exists():
        raise QbenchError(f"run {run} in {store.root} has no item table {items_file}; "
                          "was it written by qbench.causal.sweep.run?")
    items = pd.read_parquet(items_file)
    if long.empty:
        return pd.DataFrame(columns=ITEM_COLUMNS)
    wide = long.pivot_table(index=["item", "corruption", "severity"], columns="scorer",
                            values="value", aggfunc="first")
    wide.columns.name = None
    wide = wide[sorted(wide.columns)].reset_index()
    out = items.merge(wide, on="item", how="right")
    out["severity"] = out["severity"].astype(int)
    out["_clean"] = out["corruption"] != CLEAN
    out = out.sort_values(["_clean", "corruption", "severity", "item"]).drop(columns="_clean")
    scorer_cols = [c for c in out.columns if c not in ITEM_COLUMNS]
    return out[ITEM_COLUMNS + scorer_cols].reset_index(drop=True)
