"""Marked models study: can explanation maps be trusted when a model was trained to move them?

Marked models had their Grad-CAM pushed onto a planted target (salient regions, the four
corners, the letters "VG") by a CAM loss, starting from trained bases (IQA regressor
``iqa-cnn`` on the KADID-style ``refs`` set with SSIM pseudo-labels; the zoo classifier
``scenes-vgg-s-s0``) in two families: ``ft`` (the whole network fine-tuned with task + CAM
loss, the source work's setting) and ``mark`` (a zero-mean mark branch on the frozen base: the
function is the base's). Each has an unmarked twin, the same fine-tune with weight 0. The
study measures

1. marking success (Grad-CAM energy in the target, top-k IoU) against task quality, and the
   trade-off over the CAM-loss weight (``ft`` family, corners target, 5 weights per task);
2. the audit of every registered explainer on every audited marked/twin pair: visibility of
   the mark, agreement with Grad-CAM, deletion/insertion AUC, region-removal faithfulness,
   sanity (cascading randomisation) and a detector of marked models from map statistics.

    .venv/bin/python studies/marked_models.py --preset quick   # committed checkpoints, minutes
    .venv/bin/python studies/marked_models.py --preset full    # 2 seeds (trains seed 1), more
                                                               # images, paper iteration counts

``--no-audit`` rewrites only the model tables and keeps the audit tables in --out.
Writes results/marked_models/<preset>/: study.json, success/tradeoff/audit_*.parquet,
gallery.npz, report.html (qbench/report/marked_models.py). Options: ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qbench.marking.study import StudyConfig
from qbench.study import Study, main


@dataclass
class Config(StudyConfig):
    audit: bool = True  # False: rewrite only the model tables (success, trade-off)


PRESETS = {
    # committed seed-0 checkpoints, 8 images per task, cheap explainer settings
    "quick": dict(seeds=(0,), n_images=8, n_boot=500, train_missing=False),
    # two seeds (seed 1 is trained into $QBENCH_HOME/zoo when missing), 48 images per task,
    # the explainers' own (paper) settings except RISE's mask count
    "full": dict(seeds=(0, 1), n_images=48, n_boot=2000, train_missing=True,
                 options={"rise": {"n_masks": 2000}}),
}


def run(cfg: Config, out: Path) -> dict:
    from qbench.marking.audit import QUICK_OPTIONS
    from qbench.marking.study import run as measure

    measure(cfg, out, audit=cfg.audit)
    return {"audit_rerun": cfg.audit, "seed": list(cfg.seeds),
            "method_options": cfg.options if cfg.options is not None else QUICK_OPTIONS}


STUDY = Study("marked_models", __doc__, Config, PRESETS, run)

if __name__ == "__main__":
    main(STUDY)
