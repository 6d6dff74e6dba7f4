"""Quality vs accuracy: do IQA metrics predict DNN accuracy, and do task-aligned ones do better?

Sweeps ``scenes`` test images clean and under the 19 ImageNet-C corruptions x 5 severities,
scores them with the six zoo classifiers (``task:M:correct``) and with conventional and
task-aligned quality metrics, then runs the causal analysis (DoWhy effects with refuters,
alignment and within-content AUROC with cluster-bootstrap CIs, gcm arrow strengths).

    .venv/bin/python studies/quality_vs_accuracy.py --preset quick   # minutes on 2 CPU cores
    .venv/bin/python studies/quality_vs_accuracy.py --preset full

The task-aligned metrics use the proxy ``scenes-proxy-cnn-s0``, which is none of the six
evaluated models, so every model is a fair target for them. Writes
results/quality_vs_accuracy/<preset>/: study.json, store/ (the sweep), the Parquet tables of
:func:`qbench.causal.analysis.analyze` (``table.parquet`` is the wide sweep table),
graph.gml, summary.json, report.html. Options: ``--help``.

Your own images and models::

    studies/quality_vs_accuracy.py --dataset imagefolder --root DIR --size 224 \
        --models mymod:make torchvision:resnet18=weights.pt --metrics pyiqa:psnr pyiqa:ssim

* ``--dataset`` any classification dataset (``scenes``, ``cifar10``, ``imagefolder``: ImageNet
  style ``DIR/[split/]<class>/<image>``, or a registered loader), ``--root``, ``--split``
  (default ``val`` for folders, else ``test``);
* ``--models`` model specs, anything :func:`qbench.models.load` takes (zoo name, ``.pt``
  file, ``torchvision:ARCH[=PATH]``, ``timm:NAME[=PATH]``, ``module:attr``); a spec's scorers
  are named ``task:<spec with : as .>:correct`` (``task:mymod.make:correct``);
* ``--size S`` the size policy (:mod:`qbench.data.resize`): each image's shorter side is
  resized to S (antialiased bilinear), then the centred S x S crop is taken, so photographs
  of different sizes batch; masks follow (nearest). Without it the images must share one
  size, or the study stops with one line saying to pass ``--size``;
* ``--labels dataset`` (default): ``correct`` means "top-1 == the dataset's label", and each
  model's class count must equal the dataset's; ``--labels clean-prediction``: ``correct``
  means "top-1 == the model's own top-1 on the clean image" (the flip-rate view; no labels
  needed), ``loss`` is the cross-entropy of that clean prediction. The choice is recorded in
  the sweep's run configuration, study.json and summary.json (``ground_truth``);
* ``--corruptions`` and ``--severities`` a smaller grid (default: all 19 x 1-5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from qbench.models.zoo import task_models
from qbench.study import Study, main

# the offline pyiqa metrics without mad (slow) and ms_ssim (needs >= 161 px); the quick preset
# also leaves out vsi and ssimc, measured here at 0.74 and 0.18 s per 64 px image (on a loaded
# 2-core machine), 5-15x the others
PYIQA_FAST = ("psnr", "psnry", "ssim", "cw_ssim", "fsim", "vif", "gmsd", "nlpd", "piqe",
              "entropy")
OTHER = ("sharpness", "colorfulness", "proxy-confidence", "tg-iqa")
REAL_QUICK = ("psnr", "ssim", "gmsd", "piqe")
REAL = ("psnr", "psnry", "ssim", "gmsd", "nlpd", "fsim", "vif", "piqe", "entropy")
REAL_OTHER = ("sharpness", "colorfulness")


ANALYSIS = ("n_boot", "refute_accuracy_severities", "refute_metric_severities",
            "refute_metric_max", "num_simulations", "gcm_rows")


@dataclass
class Config:
    metrics: tuple[str, ...]
    models: tuple[str, ...] = field(default_factory=lambda: tuple(task_models("scenes")))
    dataset: str = "scenes"
    root: str | None = None
    split: str | None = None  # None: val for imagefolder, else test
    size: int | None = None  # shorter side to size, centred crop (qbench.data.resize)
    labels: str = "dataset"  # or "clean-prediction"
    corruptions: tuple[str, ...] | None = None  # None: the 19 ImageNet-C corruptions
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    n_images: int = 40
    n_boot: int = 500
    refute_accuracy_severities: tuple[int, ...] | None = (3, 5)
    refute_metric_severities: tuple[int, ...] = (5,)
    refute_metric_max: int | None = 30
    num_simulations: int = 10
    gcm_rows: int = 2000
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """Unknown metric, model, dataset or corruption names fail here, in one line, before
        any work."""
        import qbench.corrupt
        import qbench.metrics
        import qbench.models
        from qbench.data import classification
        from qbench.errors import QbenchError

        classification.check(self.dataset, self.labels, self.size)
        for name in self.metrics:
            qbench.metrics.info(name)
        if not self.models:
            raise QbenchError("the study needs at least one model (--models SPEC ...)")
        for name in self.models:
            qbench.models.info(name)
        for name in self.corruptions or ():
            qbench.corrupt.info(name)
        bad = [s for s in self.severities if isinstance(s, bool) or s not in (1, 2, 3, 4, 5)]
        if bad or not self.severities:
            raise QbenchError(f"severities are 1 to 5, not {list(self.severities)}")


PRESETS = {
    "quick": dict(metrics=(*(f"pyiqa:{m}" for m in PYIQA_FAST), *OTHER)),
    "full": dict(metrics=(*(f"pyiqa:{m}" for m in (*PYIQA_FAST, "ssimc", "vsi")), *OTHER),
                 n_images=400, n_boot=2000, refute_accuracy_severities=None,
                 refute_metric_severities=(3, 5), refute_metric_max=None, num_simulations=20,
                 gcm_rows=6000),
    # a real ImageNet classifier at 224 px on crops of the refs photographs (20 photographs;
    # content group = photograph), ground truth = its own clean prediction (no ImageNet labels
    # exist for these photographs). No task-aligned metrics: qbench's are trained on 64 px
    # scenes. Measured costs at 224 px on 2 loaded cores (s per image): ssim 0.21, vif 0.18,
    # fsim 0.15, entropy 0.09, gmsd 0.05, nlpd 0.02, piqe 0.01, psnr 0.002, cw_ssim 0.98;
    # efficientnet-lite0 forward 0.07-0.12
    "real-quick": dict(models=("efficientnet-lite0",), dataset="refs-crops", split="all",
                       labels="clean-prediction", n_images=20, severities=(1, 3, 5),
                       metrics=(*(f"pyiqa:{m}" for m in REAL_QUICK), *REAL_OTHER)),
    "real": dict(models=("efficientnet-lite0",), dataset="refs-crops", split="all",
                 labels="clean-prediction", n_images=80,
                 metrics=(*(f"pyiqa:{m}" for m in REAL), *REAL_OTHER), n_boot=2000),
}


def run(cfg: Config, out: Path) -> dict:
    import json
    import time

    from qbench.atomic import atomic_write
    from qbench.causal import sweep
    from qbench.causal.analysis import analyze
    from qbench.data import classification

    t0 = time.time()
    common = dict(n_images=cfg.n_images, seed=cfg.seed, device=cfg.device,
                  dataset=cfg.dataset, root=cfg.root, split=cfg.split, size=cfg.size,
                  corruptions=cfg.corruptions, severities=cfg.severities)
    # two runs in one store: task models and metrics are swept separately, so adding a model
    # later recomputes only the models' scores (same items: same dataset, n_images, seed);
    # the models first, so that a model that does not fit the dataset stops the study early
    store, rid_models = sweep.run(out, cfg.models, [], labels=cfg.labels, **common)
    store, rid_metrics = sweep.run(out, [], cfg.metrics, **common)
    t_sweep = time.time() - t0
    keys = ["item", "label", "group", "corruption", "severity"]
    # every (item, condition) the models scored is a row, also the clean ones where only
    # full-reference metrics were asked for (they have no clean score: NaN)
    df = sweep.table(store, rid_metrics).merge(sweep.table(store, rid_models), on=keys,
                                               how="right")
    analysis = {k: getattr(cfg, k) for k in ANALYSIS}
    analyze(df, store.scorer_info([rid_metrics, rid_models]), out, seed=cfg.seed, **analysis)
    run_config = store.manifest(rid_models)["config"]
    truth = classification.describe(cfg.dataset, run_config["split"], cfg.labels, cfg.size)
    summary = json.loads((out / "summary.json").read_text())
    summary["ground_truth"] = truth  # every table's "correct" was measured against this
    atomic_write(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False).encode())
    config = {**asdict(cfg), "split": run_config["split"], "ground_truth": truth,
              "model_specs": run_config.get("model_specs", {}),
              "runs": {"metrics": rid_metrics, "models": rid_models},
              "sweep_seconds": round(t_sweep, 1),
              "analysis_seconds": round(time.time() - t0 - t_sweep, 1),
              "skipped_metrics": store.manifest(rid_metrics)["attempts"][-1].get(
                  "skipped_metrics", {})}
    return {"config": config}


STUDY = Study("quality_vs_accuracy", __doc__, Config, PRESETS, run, flags={"images": "n_images"})

if __name__ == "__main__":
    main(STUDY)
