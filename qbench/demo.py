"""The default job behind ``make demo``: build the embedded datasets, corrupt, score, report.

It stays small enough for a 2-core machine in a couple of minutes: the ``refs`` photographs at
192 px and 32 ``scenes`` test images, four ImageNet-C corruptions at severities 1, 3 and 5,
and six offline pyiqa metrics. On the 64 px ``scenes`` images MS-SSIM is skipped by its
minimum-size policy and the skips are recorded, which the report shows.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import qbench.data as data
from qbench.engine import grid, score
from qbench.metrics import create
from qbench.report import build_report
from qbench.store import Store

CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "jpeg_compression", "contrast")
SEVERITIES = (1, 3, 5)
METRICS = ("pyiqa:psnr", "pyiqa:ssim", "pyiqa:ms_ssim", "pyiqa:gmsd", "pyiqa:piqe",
           "pyiqa:entropy")


def run_demo(out: str | Path = "results/demo", seed: int = 0, refs_size: int = 192,
             n_scenes: int = 32, progress: bool = True) -> Path:
    """Run the demo job into ``out`` and return the path of its report."""
    out = Path(out)
    for split in ("train", "val", "test"):
        data.load("scenes", split=split, seed=seed, progress=progress)
    refs = data.load("refs", size=refs_size)
    scenes = data.load("scenes", split="test", seed=seed).subset(range(n_scenes))
    metrics = [create(name) for name in METRICS]
    store = Store(out / "store")
    config = {"job": "demo", "seed": seed, "refs_size": refs_size, "n_scenes": n_scenes,
              "corruptions": CORRUPTIONS, "severities": SEVERITIES, "metrics": METRICS}
    run = store.begin_run(config, seeds=[seed])
    store.record_scorers(run, [asdict(m.info) for m in metrics])
    conditions = grid(CORRUPTIONS, SEVERITIES)
    totals = {}
    for ds in (refs, scenes):
        s = score(store, run, ds, conditions, metrics, seed=seed, progress=progress)
        totals[ds.key] = asdict(s)
    store.end_run(run, "finished", totals=totals)
    return build_report(out)
