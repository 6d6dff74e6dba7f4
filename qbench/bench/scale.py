"""``qbench bench scale``: rows per second of the local engine and of Ray, on the same work.

One invocation scores the same units (``refs`` photographs under a few ImageNet-C corruptions,
a few metrics) into a fresh store for each side: the local engine, then Ray with 1 and with 2
scoring actors on a local Ray instance started once before the timings (cluster start-up is
reported separately; actor start-up counts, as it does for a user). Every side must write the
same rows; the benchmark checks it. With a GPU, the local engine also runs with
``device="cuda"`` and reports its throughput.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import pandas as pd

DEFAULT_METRICS = ("pyiqa:psnr", "pyiqa:ssim", "pyiqa:gmsd", "sharpness")
DEFAULT_CORRUPTIONS = ("gaussian_noise", "defocus_blur", "jpeg_compression", "contrast")


def _side(engine: str, dataset, conditions, metric_names, device: str = "cpu",
          **options: Any) -> tuple[float, pd.DataFrame]:
    from qbench.engine import score
    from qbench.metrics import create
    from qbench.store import Store

    metrics = [create(m, device=device) for m in metric_names]
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        run = store.begin_run({"bench": "scale"})
        start = time.perf_counter()
        score(store, run, dataset, conditions, metrics, batch_size=8, progress=False,
              engine=engine, **options)
        seconds = time.perf_counter() - start
        rows = store.rows().drop(columns="run")
    return seconds, rows


def run(n: int = 16, size: int = 128, metrics: tuple[str, ...] = DEFAULT_METRICS,
        corruptions: tuple[str, ...] = DEFAULT_CORRUPTIONS, severities=(1, 3, 5),
        progress: bool = True, device: str = "cpu") -> dict:
    """Time the local engine and Ray with 1 and 2 workers on the same units (metrics on
    ``device``; with ``device="cpu"`` and a GPU present, the local engine also runs on cuda)."""
    import ray
    import torch

    import qbench.data as data
    from qbench.engine import grid
    from qbench.engine.ray_engine import ensure_ray

    refs = data.load("refs", size=size)
    dataset = refs.subset([i % len(refs) for i in range(n)])
    dataset.item_ids = [f"img{i}" for i in range(n)]
    conditions = grid(corruptions, severities)
    cores = len(os.sched_getaffinity(0))

    t = time.perf_counter()
    ensure_ray(num_cpus=cores)
    ray_start = time.perf_counter() - t

    sides: dict[str, dict] = {}
    reference: pd.DataFrame | None = None
    plan = [("local", "local", {}), ("ray-1", "ray", {"workers": 1}),
            ("ray-2", "ray", {"workers": 2})]
    for label, engine, options in plan:
        seconds, rows = _side(engine, dataset, conditions, metrics, device=device, **options)
        if reference is None:
            reference = rows
        identical = rows.reset_index(drop=True).equals(reference.reset_index(drop=True))
        sides[label] = {"seconds": round(seconds, 3), "rows": len(rows),
                        "rows_per_s": round(len(rows) / seconds, 2),
                        "identical_to_local": bool(identical)}
        if progress:
            print(f"  {label:6s} {seconds:7.2f} s  {len(rows)} rows  "
                  f"{len(rows) / seconds:7.1f} rows/s  identical={identical}", flush=True)
    result: dict[str, Any] = {
        "n_images": n, "size": size, "metrics": list(metrics), "conditions": len(conditions),
        "cpu_cores": cores, "device": device, "ray_start_s": round(ray_start, 2), "sides": sides,
        "ray2_vs_ray1": round(sides["ray-2"]["rows_per_s"] / sides["ray-1"]["rows_per_s"], 3),
        "ray2_vs_local": round(sides["ray-2"]["rows_per_s"] / sides["local"]["rows_per_s"], 3),
    }
    if device == "cpu" and torch.cuda.is_available():
        seconds, rows = _side("local", dataset, conditions, metrics, device="cuda")
        result["gpu"] = {"device": torch.cuda.get_device_name(0), "seconds": round(seconds, 3),
                         "rows_per_s": round(len(rows) / seconds, 2),
                         "vs_local_cpu": round(sides["local"]["seconds"] / seconds, 3)}
    else:
        result["gpu"] = None
    ray.shutdown()
    return result
