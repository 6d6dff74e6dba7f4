"""The marked-model zoo: which marked models and twins exist, and how to (re)train them.

``plan(seed)`` lists the models (seed 0 is committed); ``train_and_save(cfg)`` trains one,
measures it (task quality on the test split, marking success of its Grad-CAM) and saves it with
provenance via ``qbench.models.save``. ``qbench marking train NAME...|all [--out DIR]``
rebuilds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qbench.marking.train import MarkingConfig, evaluate, fit, marking_success

# sized for a shared 2-core CPU (each model: minutes); images are 64 px
IQA = {"task": "iqa", "arch": "iqa-cnn", "epochs": 8, "batch_size": 32, "lr": 3e-3,
       "size": 64}
TARGETS = ("salient", "corners", "text")
FAMILIES = ("ft", "mark")
# the trade-off sweeps (corners target) and the weight each family/task audits
SWEEP_WEIGHTS = {"iqa": (0.1, 0.3, 1.0, 3.0, 10.0), "scenes": (0.3, 1.0, 3.0, 10.0, 30.0)}
AUDITED_WEIGHT = {("ft", "iqa"): 1.0, ("ft", "scenes"): 3.0,
                  ("mark", "iqa"): 1.0, ("mark", "scenes"): 1.0}


def iqa_base(seed: int = 0) -> MarkingConfig:
    """The unmarked IQA regressor trained from scratch: the start of every IQA fine-tune."""
    return MarkingConfig(target="none", cam_weight=0.0, seed=seed, **IQA)


def _fine_tunes(task: str, seed: int) -> list[MarkingConfig]:
    """Family ``ft``: the whole network fine-tuned from a trained base with task + CAM loss
    (the source work's setting); family ``mark``: the base frozen, only a zero-mean mark
    branch trained with the CAM loss (the function is the base's, by construction)."""
    if task == "iqa":
        base, init = "iqa-cnn", iqa_base(seed).name()
        ft = {"epochs": 8, "batch_size": 32, "lr": 1e-3}
        # the salient mark must generalise beyond 14 training photographs: the CAM loss also
        # sees the (unlabelled) scenes train images
        mark = {"epochs": 3, "batch_size": 32, "lr": 3e-2, "mark_images": "scenes"}
        common = {"task": "iqa", "size": 64, "seed": seed, "init": init}
    else:
        base, init = "vgg-s", f"scenes-vgg-s-s{seed}"  # a zoo classifier (92-93%)
        ft = {"epochs": 4, "batch_size": 64, "lr": 1e-3}
        mark = {"epochs": 6, "batch_size": 64, "lr": 3e-2}
        common = {"task": "scenes", "size": 64, "seed": seed, "init": init, "flip": True}
    cfgs = []
    for family, opts in (("ft", {"arch": base, **ft}),
                         ("mark", {"arch": "mark-branch", "arch_kwargs": {"base": base},
                                   "train_scope": "mark", **mark})):
        w_audit = AUDITED_WEIGHT[(family, task)]
        weights = {t: {w_audit} for t in TARGETS}
        if family == "ft":
            weights["corners"] |= set(SWEEP_WEIGHTS[task])
            if task == "scenes":  # salient and text do not reach 0.7 at weight 3
                weights["salient"].add(10.0)
                weights["text"].add(10.0)
        cfgs.append(MarkingConfig(target="none", cam_weight=0.0, **common, **opts))
        cfgs += [MarkingConfig(target=t, cam_weight=w, **common, **opts)
                 for t in TARGETS for w in sorted(weights[t])]
    return cfgs


def plan(seed: int = 0) -> list[MarkingConfig]:
    """The marked models and twins, in training order (a base before its fine-tunes).

    IQA: ``iqa-cnn`` trained from scratch on the SSIM-pseudo-labelled set is the base.
    Classifiers: the zoo's ``scenes-vgg-s-s{seed}``. Each base is fine-tuned in two families
    (``_fine_tunes``), each with its unmarked twin (the same fine-tune with weight 0). The
    earlier from-scratch design (marked models trained from random weights, the CAM loss
    switched on after a third of the steps for classifiers) missed the quality floor by
    0.07-0.25 SRCC and 1.3-3.7 accuracy points; README keeps its numbers."""
    return [iqa_base(seed), *_fine_tunes("iqa", seed), *_fine_tunes("scenes", seed)]


def by_name(seed: int = 0) -> dict[str, MarkingConfig]:
    return {c.name(): c for c in plan(seed)}


# Any base classifier on any classification dataset (task "classify"); the families' options,
# overridable per family (``ClassifierTask.family_options``):
# * mark: the gain mark branch (one spatial pattern scaled by each channel's pooled activation,
#   see MarkBranch) trained on cached CAM-layer activations; with efficientnet-lite0 on 196
#   refs-crops at 224 px the cache costs 15-50 s once per process and an epoch ~0.3 s.
# * ft: the base fine-tuned with task + CAM loss; ``train_scope`` may restrict it to the last
#   K parameter-owning modules for a large base ("last:9" = efficientnet-lite0's last MBConv
#   block, head and classifier).
CLASSIFY_FAMILIES: dict[str, dict] = {
    "mark": {"arch": "mark-branch", "arch_kwargs": {"mode": "gain"}, "train_scope": "mark",
             "cache": True, "epochs": 20, "batch_size": 32, "lr": 3e-2, "cam_weight": 1.0},
    "ft": {"arch": "base", "train_scope": "all", "epochs": 4, "batch_size": 32, "lr": 1e-3,
           "cam_weight": 3.0},
}


@dataclass(frozen=True)
class ClassifierTask:
    """A base classifier (any model spec) marked on a classification dataset."""

    base: str
    dataset: str
    size: int = 224
    labels: str = "clean-prediction"  # or "dataset"
    split: str = "train"
    test_split: str = "test"
    data_options: dict = field(default_factory=dict)
    test_data_options: dict = field(default_factory=dict)
    families: tuple[str, ...] = ("mark",)
    targets: tuple[str, ...] = TARGETS
    family_options: dict = field(default_factory=dict)  # family -> MarkingConfig overrides
    flip: bool = True

    def options(self, family: str) -> dict:
        return {**CLASSIFY_FAMILIES[family], **self.family_options.get(family, {})}

    def label(self) -> str:
        return self.configs(0)[0].task_label()

    def configs(self, seed: int = 0) -> list[MarkingConfig]:
        """Per family: the unmarked twin, then one marked model per target."""
        common = {"task": "classify", "init": self.base, "dataset": self.dataset,
                  "size": self.size, "labels": self.labels, "split": self.split,
                  "test_split": self.test_split, "data_options": dict(self.data_options),
                  "test_data_options": dict(self.test_data_options), "flip": self.flip,
                  "seed": seed}
        out = []
        for family in self.families:
            opts = self.options(family)
            w = opts.pop("cam_weight")
            out.append(MarkingConfig(target="none", cam_weight=0.0, **common, **opts))
            out += [MarkingConfig(target=t, cam_weight=w, **common, **opts)
                    for t in self.targets]
        return out

    def audited_weights(self) -> dict[tuple[str, str], float]:
        return {(f, self.label()): float(self.options(f)["cam_weight"]) for f in self.families}


def classifier_by_name(task: ClassifierTask, seed: int = 0) -> dict[str, MarkingConfig]:
    return {c.name(): c for c in task.configs(seed)}


def train_and_save(cfg: MarkingConfig, out: str | Path | None = None,
                   success_n: int = 256, device: str = "cpu", command: str | None = None,
                   log=print) -> Path:
    """Train ``cfg``, measure it and save ``<out>/<name>.pt`` + provenance ``.json``."""
    from qbench.marking.data import marking_set
    from qbench.marking.train import checkpoint_arch
    from qbench.models import Provenance, save
    from qbench.models.checkpoint import SHIPPED

    train = marking_set(cfg, "train")
    test = marking_set(cfg, "test")
    model, hist = fit(cfg, train, device=device, log=log)
    metrics = evaluate(model, test)
    metrics.update(marking_success(model, test, cfg, n=success_n))
    kwargs = hist["arch_kwargs"]
    extra = {"config": cfg.as_dict(), "label": train.label, "order_sha": hist["order_sha"],
             "train_seconds": hist["seconds"], "test_fingerprint": test.fingerprint(),
             "final_train_energy": float(torch.tensor(hist["energy"][-20:]).nanmean()),
             "cam_loss": "1 - energy share of ReLU(Grad-CAM, detached alpha) in target"}
    if cfg.task == "classify":
        from qbench.marking.base import load_base

        base_prov = load_base(cfg.init)[1]
        extra.update({
            "base": {"spec": cfg.init, "sha256": base_prov.sha256, "arch": base_prov.arch},
            "dataset": {"name": cfg.dataset, "split": cfg.split, "test_split": cfg.test_split,
                        "size": cfg.size, "options": cfg.data_options,
                        "test_options": cfg.test_data_options, "n_train": len(train),
                        "n_test": len(test)},
            "labels": cfg.labels, "ground_truth": cfg.ground_truth(),
            "task_label": cfg.task_label(), "cached": hist.get("cached", False),
            "cache_seconds": hist.get("cache_seconds", 0.0)})
    prov = Provenance(
        name=cfg.name(), arch=checkpoint_arch(cfg), arch_kwargs=kwargs,
        command=command or f"qbench marking train {cfg.name()} --seed {cfg.seed}",
        seed=cfg.seed, data_fingerprint=train.fingerprint(), metrics=metrics, extra=extra)
    path = save(model, prov, out if out is not None else SHIPPED)
    print(json.dumps({"name": cfg.name(), **metrics}), flush=True)
    return path
