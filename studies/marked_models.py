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

Any classifier (``--base SPEC --dataset NAME``; ``--labels clean-prediction`` needs no labels):
the base (a zoo name, ``.pt`` path, ``torchvision:``/``timm:`` name, ``module:attr`` or
``efficientnet-lite0``) is marked on the dataset's ``train_split`` and measured and audited on
its ``test_split``, in ``families`` (``mark``: the gain mark branch, trained on cached CAM-layer
activations; ``ft``: fine-tuned, ``family_options={"ft": {"train_scope": "last:9"}}`` for the
last blocks only of a large base), with the same targets, twins and audit. With
``labels="clean-prediction"`` the task loss is KL(softmax(base(x)) ‖ softmax(model(x))) and task
quality is top-1 *agreement* with the base's clean prediction; every table has a
``ground_truth`` column. Checkpoints are named ``marked-<dataset><size>[-<hash of data
options>]-<base>[-cp]-<target>-w<λ>-<family>-s<seed>`` in ``$QBENCH_HOME/zoo``.

    .venv/bin/python studies/marked_models.py --preset real-quick  # efficientnet-lite0 on
    .venv/bin/python studies/marked_models.py --preset real        # refs-crops (see PRESETS)
    .venv/bin/python studies/marked_models.py --base mypkg.nets:make --dataset imagefolder \
        --root /data/photos --test-split val --size 224 --labels clean-prediction --families mark

``--no-audit`` rewrites only the model tables and keeps the audit tables in --out.
Writes results/marked_models/<preset>/: study.json, success/tradeoff/audit_*.parquet,
gallery.npz, report.html (qbench/report/marked_models.py). Options: ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qbench.marking.audit import REAL_OPTIONS, REAL_QUICK_OPTIONS
from qbench.marking.study import StudyConfig
from qbench.study import Study, main


@dataclass
class Config(StudyConfig):
    audit: bool = True  # False: rewrite only the model tables (success, trade-off)


# efficientnet-lite0 on refs-crops at 224 px (no ImageNet labels: clean-prediction); train:
# 14 photographs × 14 crops = 196 images, test: 6 other photographs × 8 crops = 48 images
REAL = dict(base="efficientnet-lite0", dataset="refs-crops", size=224,
            labels="clean-prediction", data_options={"per_photo": 14},
            test_data_options={"per_photo": 8}, families=("mark",),
            targets=("corners", "salient"), train_missing=True,
            # --families mark ft adds the fine-tuned family on the last MBConv block, head and
            # classifier (measured 6.5 s per step of 32 images: ~40 s per epoch, 4 epochs per
            # model) -- affordable to train, but its 6 more models add ~4 h of audit
            family_options={"ft": {"train_scope": "last:9"}})

PRESETS = {
    # committed seed-0 checkpoints, 8 images per task, cheap explainer settings
    "quick": dict(seeds=(0,), n_images=8, n_boot=500, train_missing=False),
    # two seeds (seed 1 is trained into $QBENCH_HOME/zoo when missing), 48 images per task,
    # the explainers' own (paper) settings except RISE's mask count
    "full": dict(seeds=(0, 1), n_images=48, n_boot=2000, train_missing=True,
                 options={"rise": {"n_masks": 2000}}),
    # 2 seeds, 48 audit images (every test crop), the budgets of audit.REAL_OPTIONS (Score-CAM
    # on 4 images, RISE and the perturbation methods on 24, without their sanity check),
    # deletion/insertion in 10 steps; ~40 min per audited model on 2 busy cores, 5 models
    # (the twins of both seeds are the base: explained once): ~3.5 h (2.5-5 h with the load)
    "real": dict(**REAL, seeds=(0, 1), n_images=48, n_boot=2000, options=REAL_OPTIONS,
                 faithfulness_steps=10),
    # 1 seed, 12 audit images, audit.REAL_QUICK_OPTIONS (Score-CAM on 2 images: ~280 s per
    # model of the ~560 s), 8 steps; 3 models: ~35 min
    "real-quick": dict(**REAL, seeds=(0,), n_images=12, n_boot=500,
                       options=REAL_QUICK_OPTIONS, faithfulness_steps=8),
}


def run(cfg: Config, out: Path) -> dict:
    from qbench.marking.audit import QUICK_OPTIONS
    from qbench.marking.study import audit_budget
    from qbench.marking.study import run as measure

    measure(cfg, out, audit=cfg.audit)
    task = cfg.classifier_task()
    return {"audit_rerun": cfg.audit, "seed": list(cfg.seeds),
            "method_options": cfg.options if cfg.options is not None else QUICK_OPTIONS,
            "audit_budget": audit_budget(out, cfg),
            "classifier": None if task is None else {
                "base": task.base, "dataset": task.dataset, "size": task.size,
                "labels": task.labels, "families": list(task.families),
                "ground_truth": task.configs(0)[0].ground_truth()}}


STUDY = Study("marked_models", __doc__, Config, PRESETS, run)

if __name__ == "__main__":
    main(STUDY)
