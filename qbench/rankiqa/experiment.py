"""The RankIQA study's measurements as tables (the study script only picks a preset and writes).

* ``ranking``: held-out pair accuracy per distortion type for an untrained network, RankIQA
  (ranking only), the same network trained directly on the fine-tuning target, and
  RankIQA + fine-tuning;
* ``correlations``: SRCC / PLCC of those models against the fine-tuning target's held-out
  references (RankIQA before vs after fine-tuning);
* ``ablation``: the number of ranked levels (2-6, pristine included) used in training;
* ``training``: loss curves (every 10th step).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import pandas as pd

from qbench.rankiqa.evaluate import correlations, ranking_accuracy
from qbench.rankiqa.pipeline import ranked_split, targets_split
from qbench.rankiqa.ranked import level_subset
from qbench.rankiqa.train import (
    FinetuneConfig,
    RankConfig,
    finetune,
    new_model,
    score_targets,
    train_ranking,
)


@dataclass
class StudyConfig:
    size: int = 128
    crop: int = 48
    sets: tuple[str, ...] = ("live",)
    rank_steps: int = 300
    sources: int = 1
    ft_steps: int = 200
    ft_batch: int = 32
    dataset: str = "refs"  # or kadid10k / tid2013 / live (with root)
    root: str | None = None
    pseudo_metric: str = "pyiqa:fsim"
    pseudo_types: int | None = 4
    max_items: int | None = None
    ablation_levels: tuple[int, ...] = (2, 3, 4, 5, 6)
    ablation_finetune: bool = False
    n_crops: int = 30
    seed: int = 0
    timings: dict = field(default_factory=dict)


def _acc_rows(rows, which, model_name, model, test, cfg) -> None:
    acc = ranking_accuracy(model, test, cfg.crop, cfg.n_crops, cfg.seed)
    pairs = len(test.refs) * len(test.levels) * (len(test.levels) - 1) // 2
    for t, a in acc.items():
        rows.append({"set": which, "model": model_name, "type": t, "accuracy": a,
                     "pairs": pairs * (len(test.types) if t == "all" else 1)})


def _corr_row(which, model_name, model, test, cfg) -> dict:
    c = correlations(score_targets(model, test, cfg.crop, cfg.n_crops, cfg.seed), test.target)
    return {"set": which, "model": model_name, **c}


def _curve(rows, which, name, losses) -> None:
    rows += [{"set": which, "model": name, "step": k, "loss": v}
             for k, v in enumerate(losses) if k % 10 == 0 or k == len(losses) - 1]


def run(cfg: StudyConfig, progress: bool = True, device: str = "cpu"
        ) -> dict[str, pd.DataFrame | dict]:
    """Every table of the study; models train and are scored on ``device``."""
    ranking, corr, ablation, curves, info = [], [], [], [], {}
    rank_cfg = RankConfig(steps=cfg.rank_steps, sources=cfg.sources, crop=cfg.crop,
                          seed=cfg.seed)
    ft_cfg = FinetuneConfig(steps=cfg.ft_steps, batch=cfg.ft_batch, crop=cfg.crop,
                            seed=cfg.seed)
    for which in cfg.sets:
        t0 = time.perf_counter()
        split = ranked_split(which, cfg.size, None, 0.2, cfg.seed)
        train_t, test_t = targets_split(cfg.dataset, split.references, split.keys,
                                        split.test.refs, cfg.root, cfg.pseudo_metric,
                                        cfg.pseudo_types, max_items=cfg.max_items,
                                        seed=cfg.seed, progress=progress, device=device)
        info[which] = {"train_refs": split.train.refs, "test_refs": split.test.refs,
                       "types": split.train.types, "ground_truth": test_t.ground_truth,
                       "n_target_train": len(train_t), "n_target_test": len(test_t)}
        untrained = new_model(rank_cfg.widths, cfg.seed)
        rankiqa, h_rank = train_ranking(split.train, rank_cfg, progress=progress, device=device)
        scratch, h_scratch = finetune(new_model(rank_cfg.widths, cfg.seed), train_t, ft_cfg,
                                      progress=progress, device=device)
        tuned, h_ft = finetune(copy.deepcopy(rankiqa), train_t, ft_cfg, progress=progress,
                               device=device)
        models = {"untrained": untrained, "rankiqa": rankiqa, "scratch-on-target": scratch,
                  "rankiqa-ft": tuned}
        for name, m in models.items():
            _acc_rows(ranking, which, name, m, split.test, cfg)
            corr.append(_corr_row(which, name, m, test_t, cfg))
        for name, h in (("rankiqa", h_rank), ("scratch-on-target", h_scratch),
                        ("rankiqa-ft", h_ft)):
            _curve(curves, which, name, h.losses)
        info[which]["seconds"] = time.perf_counter() - t0
        if which != cfg.sets[0]:
            continue
        for n_levels in cfg.ablation_levels:  # the number-of-levels ablation, first set only
            keep = level_subset(len(split.train.levels), n_levels)
            if n_levels == len(split.train.levels):
                m = rankiqa
            else:
                m, _ = train_ranking(split.train.subset_levels(keep), rank_cfg,
                                     progress=progress, device=device)
            acc = ranking_accuracy(m, split.test, cfg.crop, cfg.n_crops, cfg.seed)["all"]
            row = {"set": which, "levels": n_levels, "kept": ",".join(map(str, keep)),
                   "accuracy": acc}
            c = _corr_row(which, "", m, test_t, cfg)
            row.update({"srcc": c["srcc"], "plcc": c["plcc"], "n": c["n"]})
            if cfg.ablation_finetune:
                ft, _ = finetune(copy.deepcopy(m), train_t, ft_cfg, progress=progress,
                                 device=device)
                c = _corr_row(which, "", ft, test_t, cfg)
                row.update({"srcc_ft": c["srcc"], "plcc_ft": c["plcc"]})
            ablation.append(row)
    return {"ranking": pd.DataFrame(ranking), "correlations": pd.DataFrame(corr),
            "ablation": pd.DataFrame(ablation), "training": pd.DataFrame(curves), "info": info}
