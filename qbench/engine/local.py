"""The scoring engine: dataset x corruption grid x metrics -> store rows, resumable.

For every condition (``clean`` or a corruption at a severity) and every batch of items, the
engine asks the store which (item, metric) keys are already finished, corrupts only the images
still needed, scores them, and writes one Parquet part of values and one of failures. A killed
run therefore loses at most the batch in flight, and running it again recomputes nothing that
was finished. A failing item is recorded with its reason and the run goes on.

Full-reference metrics compare the scored image with its reference: the clean image under a
corruption, or, for IQA datasets that ship references (KADID-10k, TID2013, LIVE, CSIQ), the
dataset's pristine image. On the clean condition of a dataset without references they are not
scored (the image would be its own reference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

import qbench.corrupt as corrupt
from qbench.data.base import ImageSet, IQASet
from qbench.errors import QbenchError
from qbench.metrics.base import Metric
from qbench.store import CLEAN, Store


@dataclass(frozen=True)
class Condition:
    corruption: str
    severity: int

    @property
    def is_clean(self) -> bool:
        return self.corruption == CLEAN


def grid(corruptions: Iterable[str], severities: Iterable[int] = (1, 2, 3, 4, 5),
         clean: bool = True) -> list[Condition]:
    """The clean condition (optional) followed by every corruption x severity."""
    sev = list(severities)
    return ([Condition(CLEAN, 0)] if clean else []) + [
        Condition(c, s) for c in corruptions for s in sev
    ]


@dataclass
class ScoreSummary:
    written: int = 0
    failed: int = 0
    reused: int = 0


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


def _load(dataset: ImageSet, idx: Sequence[int]) -> tuple[torch.Tensor | None, dict[int, str]]:
    """The batch of ``idx``, or per-item reads when the batch cannot be stacked."""
    try:
        return dataset.batch(idx), {}
    except Exception:
        pass
    images, bad = {}, {}
    for i in idx:
        try:
            images[i] = dataset.image(i)
        except Exception as exc:
            bad[i] = _reason(exc)
    good = [i for i in idx if i in images]
    shapes = {tuple(images[i].shape) for i in good}
    if len(shapes) > 1:  # mixed sizes: keep the most common, record the rest
        common = max(shapes, key=lambda s: sum(tuple(images[i].shape) == s for i in good))
        for i in good:
            if tuple(images[i].shape) != common:
                bad[i] = f"ImageSizeMismatch: {tuple(images[i].shape)} in a batch of {common}"
    good = [i for i in good if i not in bad]
    return (torch.stack([images[i] for i in good]) if good else None), bad


def _score(metric: Metric, x: torch.Tensor, ref: torch.Tensor | None,
           labels: torch.Tensor | None = None) -> list[float | str]:
    """Scores for each row of ``x``; a string in place of a score is the reason it failed."""
    try:
        values = metric(x, ref) if labels is None else metric(x, ref, labels=labels)
        if values.shape != (x.shape[0],):
            raise QbenchError(f"returned shape {tuple(values.shape)} for {x.shape[0]} images")
        return [float(v) if math.isfinite(float(v)) else f"non-finite score {float(v)}"
                for v in values]
    except Exception as exc:
        if x.shape[0] == 1:
            return [_reason(exc)]
        # isolate the failing items: score one by one
        return [_score(metric, x[k : k + 1], None if ref is None else ref[k : k + 1],
                       None if labels is None else labels[k : k + 1])[0]
                for k in range(x.shape[0])]


def _score_batch(run: str, dataset: ImageSet, cond: Condition, todo: dict[str, list[int]],
                 metrics: Sequence[Metric], seed: int, table: str | None
                 ) -> tuple[list[dict], list[dict]]:
    """Rows and failures for the (item, metric) pairs in ``todo`` under ``cond``."""
    rows: list[dict] = []
    failures: list[dict] = []

    def record(i: int, m: Metric, outcome: float | str) -> None:
        k = {"run": run, "dataset": dataset.key, "item": dataset.item_ids[i],
             "corruption": cond.corruption, "severity": cond.severity, "seed": seed,
             "scorer": m.info.name}
        if isinstance(outcome, str):
            failures.append({**k, "reason": outcome})
        else:
            rows.append({**k, "value": outcome})

    def record_all(items: Iterable[int], why: str) -> None:
        for m in metrics:
            for i in items:
                if i in todo[m.info.name]:
                    record(i, m, why)

    needed = sorted({i for items in todo.values() for i in items})
    clean, bad = _load(dataset, needed)
    for i, why in bad.items():
        record_all([i], why)
    ok = [i for i in needed if i not in bad]
    if not ok or clean is None:
        return rows, failures
    try:
        x = clean if cond.is_clean else corrupt.apply(clean, cond.corruption, cond.severity,
                                                      seed=seed, table=table)
    except Exception as exc:
        record_all(ok, f"corruption failed: {_reason(exc)}")
        return rows, failures
    pos = {i: p for p, i in enumerate(ok)}
    shipped = _dataset_references(dataset, ok, clean.shape[1:]) \
        if cond.is_clean and has_references(dataset) else {}
    for m in metrics:
        items = [i for i in todo[m.info.name] if i in pos]
        if m.info.kind == "FR" and shipped:
            for i in [i for i in items if isinstance(shipped.get(i), str)]:
                record(i, m, shipped[i])
            items = [i for i in items if not isinstance(shipped.get(i), str)]
        if not items:
            continue
        sel = torch.tensor([pos[i] for i in items])
        ref = None
        if m.info.kind == "FR":
            ref = torch.stack([shipped[i] for i in items]) if shipped else clean[sel]
        labels = None  # scorers that declare needs_labels (task models) get the batch's labels
        if getattr(m, "needs_labels", False):
            if getattr(dataset, "labels", None) is None or len(dataset.labels) != len(dataset):
                for i in items:
                    record(i, m, f"{m.info.name} needs class labels; {dataset.key} has none")
                continue
            labels = torch.as_tensor(dataset.labels[items], dtype=torch.long)
        for i, outcome in zip(items, _score(m, x[sel], ref, labels), strict=True):
            record(i, m, outcome)
    return rows, failures


def has_references(dataset: ImageSet) -> bool:
    """Whether the dataset ships a pristine reference for its items (FR metrics need one)."""
    return isinstance(dataset, IQASet) and bool(dataset.ref_paths)


def _dataset_references(dataset: IQASet, items: Sequence[int], shape: torch.Size
                        ) -> dict[int, torch.Tensor | str]:
    """Each item's shipped reference, or the reason it cannot be used."""
    out: dict[int, torch.Tensor | str] = {}
    for i in items:
        try:
            ref = dataset.reference(i)
            out[i] = ref if ref.shape == shape else (
                f"ReferenceSizeMismatch: reference {tuple(ref.shape)} vs image {tuple(shape)}")
        except Exception as exc:
            out[i] = f"reference unreadable: {_reason(exc)}"
    return out


def score(store: Store, run: str, dataset: ImageSet, conditions: Sequence[Condition],
          metrics: Sequence[Metric], seed: int = 0, table: str | None = None,
          batch_size: int = 16, progress: bool = True) -> ScoreSummary:
    """Score ``dataset`` under ``conditions`` with ``metrics`` into ``store`` as ``run``."""
    summary = ScoreSummary()
    done = store.done(run)
    n = len(dataset)
    batches = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
    bar = tqdm(total=len(conditions) * len(batches), disable=not progress,
               desc=f"scoring {dataset.key}", unit="batch")
    for cond in conditions:
        active = [m for m in metrics if not (cond.is_clean and m.info.kind == "FR"
                                             and not has_references(dataset))]
        for idx in batches:
            bar.update(1)
            todo = {m.info.name: [i for i in idx if (
                dataset.key, dataset.item_ids[i], cond.corruption, cond.severity, seed,
                m.info.name) not in done] for m in active}
            summary.reused += sum(len(idx) - len(v) for v in todo.values())
            if not any(todo.values()):
                continue
            rows, failures = _score_batch(run, dataset, cond, todo, active, seed, table)
            summary.written += store.write_rows(rows)
            summary.failed += store.write_failures(failures)
    bar.close()
    return summary
