"""The marked-model zoo: which marked models and twins exist, and how to (re)train them.

``PLAN`` lists the committed checkpoints; ``train_and_save(cfg)`` trains one, measures it (task
quality on the test split, marking success of its Grad-CAM) and saves it with provenance via
``qbench.models.save``. Run ``python -m qbench.marking.zoo NAME...`` (or ``all``) to rebuild;
use ``--out`` for a folder other than the shipped one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from qbench.marking.train import MarkingConfig, evaluate, fit, marking_success

# sized for a shared 2-core CPU (each model: minutes); IQA images are 64 px, scenes 64 px
IQA = {"task": "iqa", "arch": "iqa-cnn", "epochs": 8, "batch_size": 32, "lr": 3e-3,
       "size": 64}
SCENES = {"task": "scenes", "arch": "resnet-s", "epochs": 3, "batch_size": 64, "lr": 5e-3,
          "flip": True, "arch_kwargs": {"num_classes": 10, "widths": (16, 32, 64)},
          "n_train": None, "size": 64}
TARGETS = ("salient", "corners", "text")
SWEEP_WEIGHTS = (0.1, 0.3, 1.0, 3.0, 10.0)

def plan(seed: int = 0) -> list[MarkingConfig]:
    """The marked models and twins, as trained (the history is the design record):

    * IQA: twin; salient / corners / text at weight 1 and 0.1 (weight 1 cost SRCC); corners
      also at 0.3, 3, 10 (the trade-off sweep);
    * scenes: twin; corners at weight 1 and 0.1 from step 0 (weight 1 stayed at chance
      accuracy, 0.1 did not move the map); salient / corners / text at weight 1 switched on
      after a third of the steps (``cam_start``)."""
    cfgs = [MarkingConfig(target="none", cam_weight=0.0, seed=seed, **IQA)]
    cfgs += [MarkingConfig(target=t, cam_weight=w, seed=seed, **IQA)
             for t in TARGETS for w in (1.0, 0.1)]
    cfgs += [MarkingConfig(target="corners", cam_weight=w, seed=seed, **IQA)
             for w in SWEEP_WEIGHTS if w not in (1.0, 0.1)]
    cfgs.append(MarkingConfig(target="none", cam_weight=0.0, seed=seed, **SCENES))
    cfgs += [MarkingConfig(target="corners", cam_weight=w, seed=seed, **SCENES)
             for w in (1.0, 0.1)]
    cfgs += [MarkingConfig(target=t, cam_weight=1.0, seed=seed, cam_start=1 / 3, **SCENES)
             for t in TARGETS]
    return cfgs


def by_name(seed: int = 0) -> dict[str, MarkingConfig]:
    return {c.name(): c for c in plan(seed)}


def train_and_save(cfg: MarkingConfig, out: str | Path | None = None,
                   success_n: int = 256) -> Path:
    """Train ``cfg``, measure it and save ``<out>/<name>.pt`` + provenance ``.json``."""
    from qbench.marking.data import task_set
    from qbench.models import Provenance, save
    from qbench.models.checkpoint import SHIPPED

    train = task_set(cfg.task, "train", cfg.size).take(cfg.n_train, cfg.seed)
    test = task_set(cfg.task, "test", cfg.size)
    model, hist = fit(cfg, train)
    metrics = evaluate(model, test)
    metrics.update(marking_success(model, test, cfg, n=success_n))
    kwargs = dict(cfg.arch_kwargs)
    prov = Provenance(
        name=cfg.name(), arch=cfg.arch, arch_kwargs=kwargs,
        command=f"python -m qbench.marking.zoo {cfg.name()}", seed=cfg.seed,
        data_fingerprint=train.fingerprint(), metrics=metrics,
        extra={"config": cfg.as_dict(), "label": train.label, "order_sha": hist["order_sha"],
               "train_seconds": hist["seconds"], "test_fingerprint": test.fingerprint(),
               "final_train_energy": float(torch.tensor(hist["energy"][-20:]).nanmean()),
               "cam_loss": "1 - energy share of ReLU(Grad-CAM, detached alpha) in target"})
    path = save(model, prov, out if out is not None else SHIPPED)
    print(json.dumps({"name": cfg.name(), **metrics}), flush=True)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="+", help="checkpoint names from the plan, or 'all'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    known = by_name(args.seed)
    names = list(known) if args.names == ["all"] else args.names
    for n in names:
        if n not in known:
            print(f"unknown marked model {n!r}; known: {', '.join(known)}", file=sys.stderr)
            return 2
    for n in names:
        train_and_save(known[n], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
