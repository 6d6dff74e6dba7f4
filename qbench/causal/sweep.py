"""The corruption sweep: task-model performance and IQA scores on the same corrupted images.

``run(folder, models, metrics, ...)`` scores the first ``n_images`` test images of a
classification dataset (chosen so every class appears: classes are taken round-robin in index
order, then sorted by index) clean and under every ImageNet-C corruption x severity, with

* every zoo model's task scorers ``task:M:correct`` (0/1), ``task:M:loss`` (cross-entropy,
  lower is better) and ``task:M:confidence`` (max softmax), and
* every IQA metric given; full-reference metrics compare with the clean image (the engine's
  rule), so they are not scored -- NaN in :func:`table` -- on the clean condition,

into ``Store(folder / "store")``. The run id is a hash of the whole configuration (models with
their checkpoint sha256, metrics, grid, images), so calling ``run`` again with the same
arguments recomputes nothing (the engine skips finished keys) and a killed sweep resumes. Each
item's label and content group (``ClassificationSet.groups``: for ``scenes`` the background
photograph) are kept beside the store in ``items/<run>.parquet`` for :func:`table`.

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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

import qbench.data as data
from qbench.atomic import atomic_write
from qbench.data.base import ClassificationSet
from qbench.engine import grid, score
from qbench.errors import QbenchError
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


def default_split(dataset: str) -> str:
    return "val" if dataset == "imagefolder" else "test"


def default_table(dataset: str) -> str:
    return "cifar" if dataset == "cifar10" else "imagenet"


def load_images(dataset: str, n_images: int | None, root: str | None = None,
                split: str | None = None, options: dict | None = None) -> ClassificationSet:
    """The swept subset of ``dataset``'s test (ImageNet folders: val) split."""
    kw = dict(options or {})
    if root is not None:
        kw["root"] = root
    ds = data.load(dataset, split=split or default_split(dataset), **kw)
    if not isinstance(ds, ClassificationSet):
        raise QbenchError(f"the sweep needs a classification dataset; {dataset} is not one")
    return ds.subset(stratified_first(ds.labels, n_images))


def _model_scorers(models: Sequence[str], device: str):
    from qbench.metrics.task import scorers_for
    from qbench.models import find, load
    from qbench.models.checkpoint import sha256_file

    scorers, shas = [], {}
    for name in models:
        path = Path(name) if str(name).endswith(".pt") else find(name)
        model, prov = load(path)
        trained_on = (f"{prov.extra['dataset']}/train",) if "dataset" in prov.extra else ()
        scorers += scorers_for(prov.name, model=model, device=device, trained_on=trained_on)
        shas[prov.name] = sha256_file(path)
    return scorers, shas


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
        batch_size: int = 16) -> tuple[Store, str]:
    """Score the sweep into ``folder/store``; returns the store and the run id.

    ``table`` (severity table), ``split``, ``data_options`` (loader options, e.g. scenes
    ``size``/``seed``), ``workers`` (metrics side by side, engine default: the cores) and
    ``batch_size`` are optional extras beyond the contract; the defaults are documented above.
    """
    corruptions = list(corruptions) if corruptions is not None else imagenet_c_names()
    table = table or default_table(dataset)
    ds = load_images(dataset, n_images, root, split, data_options)
    model_scorers, shas = _model_scorers(models, device)
    metric_scorers, skipped = _metric_scorers(metrics, device)
    scorers = model_scorers + metric_scorers
    store = Store(Path(folder) / "store")
    config = {"job": "sweep", "dataset": dataset, "split": ds.split, "root": root,
              "data_options": data_options or {}, "n_images": n_images,
              "items": len(ds), "corruptions": corruptions, "severities": list(severities),
              "table": table, "seed": seed, "models": shas, "metrics": list(metrics),
              # a retrained learned metric (a new version) is a new run, never stale rows
              "metric_versions": {m.info.name: m.info.version for m in metric_scorers}}
    rid = store.begin_run(config, seeds=[seed])
    _write_items(store, rid, ds)
    store.record_scorers(rid, [asdict(s.info) for s in scorers])
    summary = score(store, rid, ds, grid(corruptions, severities), scorers, seed=seed,
                    table=table, batch_size=batch_size, progress=progress,
                    workers=workers)  # the engine holds the run's lock
    store.end_run(rid, "finished", totals=asdict(summary), skipped_metrics=skipped)
    return store, rid


def _items_path(store: Store, rid: str) -> Path:
    return store.root / "items" / f"{rid}.parquet"


def _write_items(store: Store, rid: str, ds: ClassificationSet) -> None:
    groups = ds.groups if ds.groups is not None else np.full(len(ds), -1)
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
