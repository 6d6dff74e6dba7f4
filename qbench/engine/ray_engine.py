"""The Ray engine: the local engine's run, executed on a Ray cluster with Ray Data.

The driver plans the run exactly as the local engine does (:func:`qbench.engine.local.plan`:
the same units -- one condition x one batch of items, minus the finished keys) and streams the
units through a Ray Data pipeline whose ``map_batches`` stage is an actor pool: each actor
holds the dataset and the metrics (models and weights are built once per actor, on its GPU
when ``num_gpus`` > 0), decodes and corrupts the unit's images and scores them with
:func:`qbench.engine.local.run_unit`. Decoding and corruption run inside the scoring actors
rather than in a separate task stage: a separate stage would ship every decoded image through
the object store twice, and sharing ``run_unit`` makes the rows identical to the local
engine's by construction (every CPU call uses one intra-op thread on both engines).

Only the driver writes to the store, unit by unit as results arrive, so a store on the
driver's disk is enough and the store's atomic parts keep their guarantees: a killed worker
loses only its unit in flight (Ray Data restarts the actor and retries the unit), a killed
driver loses only the units not yet written, and running the same command again resumes.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from qbench.data.base import ImageSet
from qbench.engine import guard
from qbench.engine.local import Condition, ScoreSummary, Unit, plan, run_unit, write_unit
from qbench.metrics.base import Metric
from qbench.store import Store

# the environment that must reach the workers (offline mode, caches, limits)
FORWARDED_ENV = ("QBENCH_HOME", "QBENCH_DATA", "QBENCH_METRIC_TIMEOUT", "HF_HUB_OFFLINE",
                 "TORCH_HOME", "HF_HOME", "XDG_CACHE_HOME", "QBENCH_KILL_AT", "QBENCH_RAY_PIDS",
                 "PYTHONPATH")


def _env() -> dict[str, str]:
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address`` (or ``$RAY_ADDRESS``), else start a local Ray with ``num_cpus``."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": _env()}, "include_dashboard": False,
                              "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus or len(os.sched_getaffinity(0)), **kwargs)


class _UnitScorer:
    """A Ray Data actor: holds the dataset and the metrics, scores one unit per call."""

    def __init__(self, shared: Any, run: str, seed: int, table: str | None) -> None:
        import ray
        import torch

        torch.set_num_threads(1)
        self.dataset, self.metrics, self.units = pickle.loads(ray.get(shared[0]))
        self.run, self.seed, self.table = run, seed, table
        # tests find the worker to kill here; a no-op otherwise
        if os.environ.get("QBENCH_RAY_PIDS"):
            with open(os.environ["QBENCH_RAY_PIDS"], "a") as f:
                f.write(f"{os.getpid()}\n")

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out: dict[str, list] = {"unit": [], "payload": []}
        for k in batch["unit"]:
            rows, failures, notes = run_unit(self.run, self.dataset, self.units[int(k)],
                                             self.metrics, self.seed, self.table, workers=1)
            out["unit"].append(int(k))
            out["payload"].append(pickle.dumps((rows, failures, notes)))
        return out


@guard.holding_run_lock
def score(store: Store, run: str, dataset: ImageSet, conditions: Sequence[Condition],
          metrics: Sequence[Metric], seed: int = 0, table: str | None = None,
          batch_size: int = 16, progress: bool = True, workers: int | None = None,
          num_gpus: float = 0.0, address: str | None = None) -> ScoreSummary:
    """:func:`qbench.engine.local.score` on Ray: the same rows, ``workers`` scoring actors
    (default: the cluster's CPUs), ``num_gpus`` per actor."""
    import ray

    ensure_ray(address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # qbench's own bar below counts units
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    units, reused = plan(store, run, dataset, conditions, metrics, seed, batch_size)
    summary = ScoreSummary(reused=reused)
    if not units:
        return summary
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    shared = [ray.put(pickle.dumps((dataset, list(metrics), units)))]
    # a killed worker is restarted and its unit retried: Ray Data's actor-pool defaults
    # (max_restarts=-1, max_task_retries=-1), relied on and tested in tests/test_engine_ray.py
    remote = {"num_cpus": 1, "num_gpus": num_gpus, "runtime_env": {"env_vars": _env()}}
    pipeline = ray.data.from_items([{"unit": k} for k in range(len(units))],
                                   override_num_blocks=len(units))
    scored = pipeline.map_batches(
        _UnitScorer, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"shared": shared, "run": run, "seed": seed, "table": table},
        **remote)
    with tqdm(total=len(units), disable=not progress, desc=f"scoring {dataset.key} on Ray",
              unit="batch") as bar:
        for row in scored.iter_rows():
            write_unit(store, summary, *pickle.loads(row["payload"]))
            bar.update(1)
    return summary


__all__ = ["Unit", "ensure_ray", "score"]
