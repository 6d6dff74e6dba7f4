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
:func:`qbench.causal.analysis.analyze`, graph.gml, report.html. Options: ``--help``.
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


@dataclass
class Config:
    metrics: tuple[str, ...]
    models: tuple[str, ...] = field(default_factory=lambda: tuple(task_models("scenes")))
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
        """Unknown metric or model names fail here, in one line, before any work."""
        import qbench.metrics
        import qbench.models

        for name in self.metrics:
            qbench.metrics.info(name)
        for name in self.models:
            qbench.models.info(name)


PRESETS = {
    "quick": dict(metrics=(*(f"pyiqa:{m}" for m in PYIQA_FAST), *OTHER)),
    "full": dict(metrics=(*(f"pyiqa:{m}" for m in (*PYIQA_FAST, "ssimc", "vsi")), *OTHER),
                 n_images=400, n_boot=2000, refute_accuracy_severities=None,
                 refute_metric_severities=(3, 5), refute_metric_max=None, num_simulations=20,
                 gcm_rows=6000),
}


def run(cfg: Config, out: Path) -> dict:
    import time

    from qbench.causal import sweep
    from qbench.causal.analysis import analyze

    t0 = time.time()
    # two runs in one store: metrics and task models are swept separately, so adding a model
    # later recomputes only the models' scores (same items: same dataset, n_images, seed)
    store, rid_metrics = sweep.run(out, [], cfg.metrics, n_images=cfg.n_images, seed=cfg.seed,
                                   device=cfg.device)
    store, rid_models = sweep.run(out, cfg.models, [], n_images=cfg.n_images, seed=cfg.seed,
                                  device=cfg.device)
    t_sweep = time.time() - t0
    keys = ["item", "label", "group", "corruption", "severity"]
    df = sweep.table(store, rid_metrics).merge(sweep.table(store, rid_models), on=keys,
                                               how="inner")
    analysis = {k: v for k, v in asdict(cfg).items()
                if k not in ("metrics", "models", "n_images", "seed", "device")}
    analyze(df, store.scorer_info([rid_metrics, rid_models]), out, seed=cfg.seed, **analysis)
    config = {**asdict(cfg), "dataset": "scenes",
              "runs": {"metrics": rid_metrics, "models": rid_models},
              "sweep_seconds": round(t_sweep, 1),
              "analysis_seconds": round(time.time() - t0 - t_sweep, 1),
              "skipped_metrics": store.manifest(rid_metrics)["attempts"][-1].get(
                  "skipped_metrics", {})}
    return {"config": config}


STUDY = Study("quality_vs_accuracy", __doc__, Config, PRESETS, run, flags={"images": "n_images"})

if __name__ == "__main__":
    main(STUDY)
