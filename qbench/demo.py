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
             n_scenes: int = 32, n_refs: int | None = None,
             corruptions: tuple[str, ...] = CORRUPTIONS, severities: tuple[int, ...] = SEVERITIES,
             metrics: tuple[str, ...] = METRICS, scenes_options: dict | None = None,
             progress: bool = True, engine: str = "local", device: str = "cpu") -> Path:
    """Run the demo job into ``out`` and return the path of its report.

    The keyword arguments exist so tests can run the same job on a smaller grid. ``engine``
    (local or ray) does not change the rows; ``device`` (cpu, cuda) is part of the run's
    identity when it is not the CPU (GPU kernels may round differently).
    """
    out = Path(out)
    scenes_options = scenes_options or {}
    for split in ("train", "val", "test"):
        data.load("scenes", split=split, seed=seed, progress=progress, **scenes_options)
    refs = data.load("refs", size=refs_size)
    refs = refs.subset(range(n_refs)) if n_refs else refs
    scenes = data.load("scenes", split="test", seed=seed, **scenes_options)
    scenes = scenes.subset(range(min(n_scenes, len(scenes))))
    scorers = [create(name, device=device) for name in metrics]
    store = Store(out / "store")
    config = {"job": "demo", "seed": seed, "refs_size": refs_size, "n_refs": n_refs,
              "n_scenes": n_scenes, "corruptions": corruptions, "severities": severities,
              "metrics": metrics, "scenes": scenes_options}
    if device != "cpu":
        config["device"] = device
    run = store.begin_run(config, seeds=[seed])
    store.record_scorers(run, [asdict(m.info) for m in scorers])
    conditions = grid(corruptions, severities)
    totals = {}
    for ds in (refs, scenes):
        s = score(store, run, ds, conditions, scorers, seed=seed, progress=progress,
                  engine=engine)
        totals[ds.key] = asdict(s)
    store.end_run(run, "finished", totals=totals)
    return build_report(out)
