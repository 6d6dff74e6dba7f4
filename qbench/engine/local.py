"""The scoring engine: dataset x corruption grid x metrics -> store rows, resumable.

For every condition (``clean`` or a corruption at a severity) and every batch of items, the
engine asks the store which (item, metric) keys are already finished, corrupts only the images
still needed, scores them, and writes one Parquet part of values and one of failures. A killed
run therefore loses at most the batch in flight, and running it again recomputes nothing that
was finished. A failing item is recorded with its reason and the run goes on.

"Finished" is per content: every value and failure records the item's content (a hash of its
file, :meth:`~qbench.data.base.ImageSet.content`), and a key counts as finished only while the
file still has that content. A replaced image is therefore scored again on resume, and an item
failure (final for that file) is retried once the file is repaired.

Full-reference metrics compare the scored image with its reference: the clean image under a
corruption, or, for IQA datasets that ship references (KADID-10k, TID2013, LIVE, CSIQ), the
dataset's pristine image. On the clean condition of a dataset without references they are not
scored (the image would be its own reference).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from qbench.data.base import ImageSet, IQASet
from qbench.engine import guard
from qbench.faults import kill_point
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


def _score_chunked(metric: Metric, x: torch.Tensor, ref: torch.Tensor | None,
                   labels: torch.Tensor | None = None) -> list[float | str]:
    """:func:`_score` in calls of the metric's preferred ``batch_size`` (whole batch if none)."""
    step = metric.info.batch_size or x.shape[0]
    out: list[float | str] = []
    for s in range(0, x.shape[0], step):
        out += _score(metric, x[s : s + step], None if ref is None else ref[s : s + step],
                      None if labels is None else labels[s : s + step])
    return out


def _run_jobs(jobs: Sequence[tuple[Metric, torch.Tensor, torch.Tensor | None,
                                   torch.Tensor | None]], workers: int) -> list[list[float | str]]:
    """Score every (metric, images, refs, labels) job; thread-safe metrics run side by side.

    Every call runs with ONE intra-op thread, so a value never depends on the machine's core
    count or on the engine (local or Ray) that computed it. Parallelism comes from running
    metrics side by side instead: with ``workers`` > 1 each thread-safe metric (``thread_safe``
    attribute) gets a worker thread. On CPU this is also faster: one call with many intra-op
    threads scales poorly on small images and collapses when the cores are shared. Metrics
    that do not declare ``thread_safe`` run one after another in the calling thread.
    """
    results: list[list[float | str] | None] = [None] * len(jobs)
    pooled = [k for k, job in enumerate(jobs) if workers > 1 and job[0].info.thread_safe]
    # longest first (a metric's optional ``cost`` per image): a slow metric started last would
    # leave the other workers idle at the end of the unit; the values do not depend on order
    pooled.sort(key=lambda k: -float(jobs[k][0].info.cost) * jobs[k][1].shape[0])

    def work(k: int) -> list[float | str]:
        torch.set_num_threads(1)  # per thread: threads started here inherit it
        return _score_chunked(*jobs[k])

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if pooled:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for k, out in zip(pooled, pool.map(work, pooled), strict=True):
                    results[k] = out
        for k in range(len(jobs)):
            if results[k] is None:
                results[k] = _score_chunked(*jobs[k])
    finally:
        torch.set_num_threads(before)
    return results  # type: ignore[return-value]


def _score(metric: Metric, x: torch.Tensor, ref: torch.Tensor | None,
           labels: torch.Tensor | None = None) -> list[float | str]:
    """Scores for each row of ``x``; a string in place of a score is the reason it failed
    (a :class:`~qbench.engine.guard.Failure` carrying its kind; see that module)."""
    return guard.score(metric, x, ref, labels)


def _score_batch(run: str, dataset: ImageSet, cond: Condition, todo: dict[str, list[int]],
                 metrics: Sequence[Metric], seed: int, table: str | None, workers: int = 1,
                 notes: list[dict] | None = None) -> tuple[list[dict], list[dict]]:
    """Rows and failures for the (item, metric) pairs in ``todo`` under ``cond``; notes on
    how inputs were adapted are appended to ``notes``."""
    rows: list[dict] = []
    failures: list[dict] = []
    contents: dict[int, str] = {}

    def record(i: int, m: Metric, outcome: float | str) -> None:
        if i not in contents:
            contents[i] = dataset.content(i)
        k = {"run": run, "dataset": dataset.key, "item": dataset.item_ids[i],
             "corruption": cond.corruption, "severity": cond.severity, "seed": seed,
             "scorer": m.info.name, "content": contents[i]}
        if isinstance(outcome, str):
            failures.append({**k, "reason": str(outcome),
                             "kind": getattr(outcome, "kind", "config")})
        else:
            rows.append({**k, "value": outcome})

    def record_all(items: Iterable[int], why: str) -> None:
        for m in metrics:
            for i in items:
                if i in todo[m.info.name]:
                    record(i, m, why)

    needed = sorted({i for items in todo.values() for i in items})
    loaded = guard.load(dataset, needed)  # validated, notes taken, one size (others later)
    if loaded.later:
        r, f = _score_batch(run, dataset, cond, {k: [i for i in v if i in loaded.later]
                                                 for k, v in todo.items()},
                            metrics, seed, table, workers, notes)
        rows += r
        failures += f
    if notes is not None:
        notes += [{"run": run, "dataset": dataset.key, "item": dataset.item_ids[i], "note": t}
                  for i, found in loaded.notes.items() for t in found]
    for i, why in loaded.failed.items():
        record_all([i], why)
    clean, ok = loaded.images, loaded.items
    if not ok or clean is None:
        return rows, failures
    x, broken = (clean, {}) if cond.is_clean else guard.corrupt(
        clean, cond.corruption, cond.severity, seed, table)
    for p, why in broken.items():
        record_all([ok[p]], why)
    pos = {i: p for p, i in enumerate(ok) if p not in broken}
    shipped = _dataset_references(dataset, ok, clean.shape[1:]) \
        if cond.is_clean and has_references(dataset) else {}
    jobs: list[tuple[Metric, list[int], torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = []
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
        if m.info.needs_labels:
            if getattr(dataset, "labels", None) is None or len(dataset.labels) != len(dataset):
                for i in items:
                    record(i, m, f"{m.info.name} needs class labels; {dataset.key} has none")
                continue
            labels = torch.as_tensor(dataset.labels[items], dtype=torch.long)
        jobs.append((m, items, x[sel], ref, labels))
    outcomes = _run_jobs([(m, xs, ref, labels) for m, _, xs, ref, labels in jobs], workers)
    for (m, items, *_), out in zip(jobs, outcomes, strict=True):
        for i, outcome in zip(items, out, strict=True):
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
            out[i] = ref if ref.shape == shape else guard.item_failure(
                f"ReferenceSizeMismatch: reference {tuple(ref.shape)} vs image {tuple(shape)}")
        except Exception as exc:
            out[i] = guard.item_failure(f"reference unreadable: {_reason(exc)}")
    return out


@dataclass
class Unit:
    """One batch of work: the items of one condition still to score, per metric name."""

    cond: Condition
    todo: dict[str, list[int]]


def plan(store: Store, run: str, dataset: ImageSet, conditions: Sequence[Condition],
         metrics: Sequence[Metric], seed: int, batch_size: int) -> tuple[list[Unit], int]:
    """The units still to do in ``run`` (finished keys skipped) and how many keys are reused.

    A key is finished only for the content it was computed from: a result of an item whose
    file has changed since (replaced, repaired) is not reused. Results recorded without a
    content (in-memory datasets, stores written before contents were recorded) are reused."""
    finished = store.finished(run)
    n = len(dataset)
    batches = [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
    contents: dict[int, str] = {}

    def content(i: int) -> str:
        if i not in contents:
            contents[i] = dataset.content(i)
        return contents[i]

    def is_done(i: int, cond: Condition, scorer: str) -> bool:
        stored = finished.get((dataset.key, dataset.item_ids[i], cond.corruption, cond.severity,
                               seed, scorer))
        return stored is not None and (stored == "" or stored == content(i))

    units, reused = [], 0
    for cond in conditions:
        for idx in batches:
            todo = {m.info.name: [i for i in idx if not is_done(i, cond, m.info.name)]
                    for m in active_metrics(dataset, cond, metrics)}
            reused += sum(len(idx) - len(v) for v in todo.values())
            if any(todo.values()):
                units.append(Unit(cond, todo))
    return units, reused


def active_metrics(dataset: ImageSet, cond: Condition, metrics: Sequence[Metric]
                   ) -> list[Metric]:
    """FR metrics sit out the clean condition of a dataset without references."""
    return [m for m in metrics if not (cond.is_clean and m.info.kind == "FR"
                                       and not has_references(dataset))]


def run_unit(run: str, dataset: ImageSet, unit: Unit, metrics: Sequence[Metric], seed: int,
             table: str | None, workers: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Rows, failures and notes of one unit (what an engine worker computes)."""
    notes: list[dict] = []
    active = [m for m in active_metrics(dataset, unit.cond, metrics) if m.info.name in unit.todo]
    rows, failures = _score_batch(run, dataset, unit.cond, unit.todo, active, seed, table,
                                  workers, notes)
    return rows, failures, notes


def write_unit(store: Store, summary: ScoreSummary, rows: list[dict], failures: list[dict],
               notes: list[dict]) -> None:
    """Store one unit's results: notes, then values, then failures (each part atomic)."""
    store.write_notes(notes)
    summary.written += store.write_rows(rows)
    kill_point("between-parts")
    summary.failed += store.write_failures(failures)


@guard.holding_run_lock
def score(store: Store, run: str, dataset: ImageSet, conditions: Sequence[Condition],
          metrics: Sequence[Metric], seed: int = 0, table: str | None = None,
          batch_size: int = 16, progress: bool = True, workers: int | None = None
          ) -> ScoreSummary:
    """Score ``dataset`` under ``conditions`` with ``metrics`` into ``store`` as ``run``.

    ``workers``: metrics scored side by side (default: the usable CPU cores, at most 8).
    """
    workers = workers or min(len(os.sched_getaffinity(0)), 8)
    units, reused = plan(store, run, dataset, conditions, metrics, seed, batch_size)
    summary = ScoreSummary(reused=reused)
    for unit in tqdm(units, disable=not progress, desc=f"scoring {dataset.key}", unit="batch"):
        write_unit(store, summary, *run_unit(run, dataset, unit, metrics, seed, table, workers))
    return summary
