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
(qbench/report/explainers.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# EP's 800-step schedule compressed into 100 steps (lr ×8, λ growth per step ^8): with the
# paper's lr the area term barely moves the mask in 100 steps
EP_QUICK = {"iterations": 100, "lr": 0.08, "regul_growth": 1.0035 ** 8}
CHEAP = ("gradcam", "gradcampp", "hirescam", "xgradcam", "layercam", "gradient",
         "gradient_x_input")
PRESETS = {
    # one model, 8 images, reduced budgets (NOT the papers'; see study.json), 17-point games
    "quick": dict(models=("scenes-vgg-s-s0",), images=8, gallery=6, game_step=256,
                  options={"rise": {"n_masks": 400}, "meaningful_perturbation":
                           {"iterations": 80}, "extremal_perturbation": EP_QUICK,
                           "robust_perturbation": {"iterations": 50},
                           "integrated_gradients": {"steps": 16}, "smoothgrad": {"samples": 16}},
                  deletion=("zero", "blur"), insertion=("blur", "zero"),
                  sanity_methods=CHEAP, sanity_modes=("cascading",)),
    # three architectures, 64 images, the papers' default budgets, every substitute; the
    # sanity checks (2 modes x 11-12 layers, each a full re-explanation) on the first 32 images,
    # RISE there with 1000 masks (the same masks on the original and the randomised model)
    "full": dict(models=("scenes-vgg-s-s0", "scenes-resnet-s-s0", "scenes-mobilenet-s-s0"),
                 images=64, gallery=8, game_step=None, options={},
                 deletion=("zero", "blur", "mean", "noise"),
                 insertion=("blur", "zero", "mean", "noise"),
                 sanity_methods=(*CHEAP, "scorecam", "smoothgrad", "integrated_gradients",
                                 "cameras", "rise"),
                 sanity_modes=("cascading", "independent"), sanity_images=32,
                 sanity_options={"rise": {"n_masks": 1000}}),
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


def main() -> Path:
    import qbench.data as data
    import qbench.explain as explain
    import qbench.models as models
    from qbench.device import add_device_argument
    from qbench.explain.evaluate.suite import SuiteConfig, compare, evaluate_methods, summarize
    from qbench.report import finish_study

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="default results/explainers/<preset>")
    ap.add_argument("--models", nargs="*", default=None, help="zoo names (default: preset's)")
    ap.add_argument("--images", type=int, default=None, help="test images (default: preset's)")
    add_device_argument(ap)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    p = PRESETS[args.preset]
    names = args.models or list(p["models"])
    n_img = args.images or p["images"]
    out = Path(args.out or f"results/explainers/{args.preset}")
    out.mkdir(parents=True, exist_ok=True)
    scenes = data.load("scenes", split="test")
    idx = np.random.default_rng(args.seed).choice(len(scenes), n_img, replace=False)
    idx.sort()
    images = scenes.batch(idx).to(args.device)
    masks = torch.from_numpy(scenes.masks[idx].astype(np.float32) / 255.0).to(args.device)
    cfg = SuiteConfig(methods=explain.names(), options=p["options"],
                      deletion_substitutes=p["deletion"], insertion_substitutes=p["insertion"],
                      sanity_methods=p["sanity_methods"], sanity_modes=p["sanity_modes"],
                      sanity_images=p.get("sanity_images"),
                      sanity_options=p.get("sanity_options", {}),
                      game_step=p["game_step"], seed=args.seed)
    t0 = time.perf_counter()
    per_image, sanity, failures, gallery, provenance = [], [], [], {}, {}
    for name in names:
        try:
            model, prov = models.load(name, map_location=args.device)
        except models.CheckpointError as exc:  # recorded; the other models still run
            print(f"{name}: skipped ({exc})")
            failures.append({"model": name, "method": "", "stage": "load", "reason": str(exc)})
            continue
        provenance[name] = {"sha256": prov.sha256, "test_acc": prov.metrics.get("test_acc")}
        print(f"{name} ({len(cfg.methods)} methods, {n_img} images)")
        rows, maps, san, fail = evaluate_methods(model, name, images, masks, cfg,
                                                 cache=out / "parts")
        per_image.append(rows)
        sanity.append(san)
        failures += fail
        if not gallery:  # the first model's maps, for the report's gallery
            g = p["gallery"]
            with torch.no_grad():
                pred = model(images[:g]).argmax(1).cpu().numpy()
            gallery = {"model": np.array(name), "methods": np.array(list(maps)),
                       "images": images[:g].cpu().numpy().astype(np.float16),
                       "masks": masks[:g].cpu().numpy().astype(np.float16),
                       "maps": np.stack([maps[m][:g] for m in maps]).astype(np.float32),
                       "labels": np.array([scenes.classes[k] for k in scenes.labels[idx[:g]]]),
                       "predicted": np.array([scenes.classes[k] for k in pred]),
                       "item_ids": np.array([scenes.item_ids[i] for i in idx[:g]])}
    if not per_image:
        raise SystemExit("no model could be loaded: " + "; ".join(f["reason"] for f in failures))
    per_image = pd.concat(per_image, ignore_index=True)
    sanity = pd.concat(sanity, ignore_index=True)
    per_image.to_parquet(out / "per_image.parquet", index=False)
    summarize(per_image, seed=args.seed).to_parquet(out / "summary.parquet", index=False)
    sanity.to_parquet(out / "sanity.parquet", index=False)
    comps = [compare(per_image, m, a, b, metric, hib, seed=args.seed) for m in names
             for a, b, metric, hib in CLAIMS
             if {a, b} <= set(per_image.loc[per_image["model"] == m, "method"])]
    pd.DataFrame(comps).to_parquet(out / "comparisons.parquet", index=False)
    np.savez_compressed(out / "gallery.npz", **gallery)
    (out / "failures.json").write_text(json.dumps(failures, indent=2))
    return finish_study(
        out, "explainers", args.preset, seed=args.seed,
        config={"models": names, "images": n_img, "image_indices": idx.tolist(),
                **asdict(cfg), "device": args.device, "threads": args.threads},
        models=provenance, seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
