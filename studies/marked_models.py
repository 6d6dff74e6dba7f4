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

Writes results/marked_models/<preset>/: study.json, success/tradeoff/audit_*.parquet,
gallery.npz, report.html (qbench/report/marked_models.py).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PRESETS = {
    # committed seed-0 checkpoints, 8 images per task, cheap explainer settings
    "quick": dict(seeds=(0,), n_images=8, n_boot=500, train_missing=False),
    # two seeds (seed 1 is trained into $QBENCH_HOME/zoo when missing), 48 images per task,
    # the explainers' own (paper) settings except RISE's mask count
    "full": dict(seeds=(0, 1), n_images=48, n_boot=2000, train_missing=True,
                 options={"rise": {"n_masks": 2000}}),
}


def main() -> Path:
    from qbench.device import add_device_argument
    from qbench.marking.audit import QUICK_OPTIONS
    from qbench.marking.study import StudyConfig, run
    from qbench.report import finish_study

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--out", default=None, help="default results/marked_models/<preset>")
    ap.add_argument("--methods", default=None, help="comma-separated explainers (default all)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--tasks", default="iqa,scenes",
                    help="audit these tasks (comma-separated); other tasks' audit rows are kept")
    ap.add_argument("--targets", default="salient,corners,text",
                    help="audit these targets; other targets' audit rows are kept")
    ap.add_argument("--no-audit", action="store_true",
                    help="rewrite only the model tables; keep the audit tables in --out")
    add_device_argument(ap)  # trains missing checkpoints there; the audit runs on the CPU
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = StudyConfig(**PRESETS[args.preset],
                      methods=tuple(args.methods.split(",")) if args.methods else None,
                      tasks=tuple(args.tasks.split(",")),
                      targets=tuple(args.targets.split(",")), device=args.device)
    out = Path(args.out or f"results/marked_models/{args.preset}")
    t0 = time.perf_counter()
    run(cfg, out, audit=not args.no_audit)
    return finish_study(
        out, "marked_models", args.preset, audit_rerun=not args.no_audit, config=asdict(cfg),
        seed=list(cfg.seeds), threads=args.threads,
        method_options=cfg.options if cfg.options is not None else QUICK_OPTIONS,
        seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
