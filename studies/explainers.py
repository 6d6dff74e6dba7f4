"""Explainers study: every registered explanation method on the zoo's scenes classifiers,
scored by localisation, faithfulness, class distortion, complexity and sanity checks.

Claims put to the test (as measured, on 64 px ``scenes`` test images, predicted class):

1. CAMERAS gives higher-resolution (``fine_detail``) and at least as faithful (deletion /
   insertion AUC) maps as Grad-CAM;
2. Robust Perturbation gives lower deletion AUC and less class distortion than Meaningful
   Perturbation, Extremal Perturbation and RISE.

    .venv/bin/python studies/explainers.py --preset quick   # a few minutes on 2 CPU cores
    .venv/bin/python studies/explainers.py --preset full    # all s0 models, paper budgets: ~80 min

Each finished (model, method) is kept in results/explainers/<preset>/parts/, so an interrupted
run resumes where it stopped (same weights, images and options; anything else recomputes).

Writes results/explainers/<preset>/: study.json, per_image.parquet, summary.parquet,
comparisons.parquet, sanity.parquet, failures.json, gallery.npz, report.html
(qbench/report/explainers.py). Options: ``--help``.

Your own images and models::

    studies/explainers.py --dataset imagefolder --root DIR --size 224 \
        --models mymod:make --methods gradcam gradient

* ``--dataset`` any classification dataset (``scenes``, ``cifar10``, ``imagefolder``:
  ``DIR/[split/]<class>/<image>``, a registered loader), ``--root``, ``--split``;
  ``--models`` model specs (anything :func:`qbench.models.load` takes: zoo name, ``.pt``,
  ``torchvision:ARCH[=PATH]``, ``timm:NAME[=PATH]``, ``module:attr``);
* ``--size S``: each image's shorter side is resized to S (antialiased bilinear), then the
  centred S x S crop is taken (:mod:`qbench.data.resize`); masks follow (nearest). Without it
  the images must share one size, or the study stops with one line saying to pass --size;
* every method explains the model's **predicted** class, so no labels are needed; the
  pointing game and its energy version need object masks (``scenes`` has them): on a dataset
  without masks they are NaN in the tables and "not available" in study.json
  (``config.ground_truth``), which also records ``--labels`` (``dataset`` or
  ``clean-prediction``: what the gallery shows as the truth).
"""

from __future__ import annotations

from pathlib import Path

from qbench.explain.evaluate.study import Config
from qbench.study import Study, main

# EP's 800-step schedule compressed into 100 steps (lr ×8, λ growth per step ^8): with the
# paper's lr the area term barely moves the mask in 100 steps
EP_QUICK = {"iterations": 100, "lr": 0.08, "regul_growth": 1.0035 ** 8}
CHEAP = ("gradcam", "gradcampp", "hirescam", "xgradcam", "layercam", "gradient",
         "gradient_x_input")
REAL_METHODS = (*CHEAP, "cameras", "integrated_gradients", "smoothgrad", "rise",
                "meaningful_perturbation", "extremal_perturbation", "robust_perturbation")
PRESETS = {
    # one model, 8 images, reduced budgets (NOT the papers'; see study.json), 17-point games
    "quick": dict(models=("scenes-vgg-s-s0",), images=8, gallery=6, game_step=256,
                  options={"rise": {"n_masks": 400}, "meaningful_perturbation":
                           {"iterations": 80}, "extremal_perturbation": EP_QUICK,
                           "robust_perturbation": {"iterations": 50},
                           "integrated_gradients": {"steps": 16}, "smoothgrad": {"samples": 16}},
                  deletion_substitutes=("zero", "blur"), insertion_substitutes=("blur", "zero"),
                  sanity_methods=CHEAP, sanity_modes=("cascading",)),
    # three architectures, 64 images, the papers' default budgets, every substitute; the
    # sanity checks (2 modes x 11-12 layers, each a full re-explanation) on the first 32 images,
    # RISE there with 1000 masks (the same masks on the original and the randomised model)
    "full": dict(models=("scenes-vgg-s-s0", "scenes-resnet-s-s0", "scenes-mobilenet-s-s0"),
                 images=64, gallery=8, game_step=None, options={},
                 deletion_substitutes=("zero", "blur", "mean", "noise"),
                 insertion_substitutes=("blur", "zero", "mean", "noise"),
                 sanity_methods=(*CHEAP, "scorecam", "smoothgrad", "integrated_gradients",
                                 "cameras", "rise"),
                 sanity_modes=("cascading", "independent"), sanity_images=32,
                 sanity_options={"rise": {"n_masks": 1000}}),
    # efficientnet-lite0 (ImageNet, 224 px) on crops of the refs photographs: no object masks
    # (localisation not available), the predicted class explained. Score-CAM is left out of
    # real-quick: 1280 channels = 1280 forwards per image at 224 px (minutes per image on
    # 2 cores); games of 17 points (3136 px per step)
    "real-quick": dict(models=("efficientnet-lite0",), dataset="refs-crops", split="all",
                       labels="clean-prediction", images=4, gallery=4, game_step=3136,
                       methods=REAL_METHODS,
                       options={"rise": {"n_masks": 400}, "meaningful_perturbation":
                                {"iterations": 80}, "extremal_perturbation": EP_QUICK,
                                "robust_perturbation": {"iterations": 50},
                                "integrated_gradients": {"steps": 16},
                                "smoothgrad": {"samples": 16}},
                       deletion_substitutes=("zero", "blur"),
                       insertion_substitutes=("blur", "zero"),
                       sanity_methods=("gradcam", "gradient"), sanity_modes=("cascading",)),
    "real": dict(models=("efficientnet-lite0",), dataset="refs-crops", split="all",
                 labels="clean-prediction", images=16, gallery=8, game_step=1568,
                 options={"rise": {"n_masks": 2000}},
                 deletion_substitutes=("zero", "blur", "mean", "noise"),
                 insertion_substitutes=("blur", "zero", "mean", "noise"),
                 sanity_methods=CHEAP, sanity_modes=("cascading",)),
}
CLAIMS = [  # (a, b, metric, higher_is_better)
    ("cameras", "gradcam", "fine_detail", True),
    *[("cameras", "gradcam", f"{g}_auc_{s}", g == "insertion")
      for g in ("deletion", "insertion") for s in ("zero", "blur")],
    *[("robust_perturbation", b, m, hib) for b in
      ("meaningful_perturbation", "extremal_perturbation", "rise")
      for m, hib in (("deletion_auc_zero", False), ("deletion_auc_blur", False),
                     ("kl_nontarget", False), ("cds", True))],
]


def run(cfg: Config, out: Path) -> dict:
    from qbench.explain.evaluate.study import run as evaluate

    return evaluate(cfg, out, CLAIMS)


STUDY = Study("explainers", __doc__, Config, PRESETS, run)

if __name__ == "__main__":
    main(STUDY)
