"""Execution engines: dataset x corruption grid x scorers -> store rows.

``qbench.engine.score(..., engine="local")`` runs on this machine
(:mod:`qbench.engine.local`); ``engine="ray"`` runs the same units on a Ray cluster
(:mod:`qbench.engine.ray_engine`) and writes exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qbench.data.base import ImageSet
from qbench.engine.local import Condition, ScoreSummary, grid, has_references
from qbench.engine.local import score as score_local
from qbench.metrics.base import Metric
from qbench.store import Store

ENGINES = ("local", "ray")


def score(store: Store, run: str, dataset: ImageSet, conditions: Sequence[Condition],
          metrics: Sequence[Metric], seed: int = 0, table: str | None = None,
          batch_size: int = 16, progress: bool = True, engine: str = "local",
          **options: Any) -> ScoreSummary:
    """Score ``dataset`` under ``conditions`` with ``metrics`` into ``store`` as ``run``.

    ``engine``: ``"local"`` (options: ``workers``) or ``"ray"`` (options: ``workers``,
    ``num_gpus``, ``address``). Resumable on both: finished keys are never recomputed.
    """
    if engine == "local":
        return score_local(store, run, dataset, conditions, metrics, seed, table, batch_size,
                           progress, **options)
    if engine == "ray":
        from qbench.engine import ray_engine

        return ray_engine.score(store, run, dataset, conditions, metrics, seed, table,
                                batch_size, progress, **options)
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Condition", "ScoreSummary", "grid", "has_references", "score"]
