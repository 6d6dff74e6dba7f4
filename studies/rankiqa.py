"""RankIQA study: does learning to rank synthetic distortion levels help a quality model?

Measures, on references held out from training (reference-disjoint split of the embedded
``refs`` photographs, or a real IQA dataset for fine-tuning with --dataset/--root):

1. ranking accuracy (share of correctly ordered level pairs) per distortion type, for an
   untrained network, RankIQA, the same network trained directly on the fine-tuning target,
   and RankIQA fine-tuned;
2. SRCC / PLCC against the fine-tuning target before and after fine-tuning;
3. the number-of-levels ablation (2-6 ranked levels, pristine included).

    .venv/bin/python studies/rankiqa.py --preset quick      # a few minutes on 2 CPU cores
    .venv/bin/python studies/rankiqa.py --preset full

Writes results/rankiqa/<preset>/: study.json, ranking/correlations/ablation/training.parquet,
report.html (qbench/report/rankiqa.py). Options: see ``--help`` (every config field).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qbench.rankiqa.experiment import StudyConfig
from qbench.study import Study, main


@dataclass
class Config(StudyConfig):
    device: str = "cpu"
    quiet: bool = False


PRESETS = {
    # small crops, one source per batch, 8 KADID types for the pseudo-labels (as the shipped
    # rankiqa-ft), LIVE set only, ablation without fine-tuning
    "quick": dict(size=128, crop=48, sets=("live",), rank_steps=300, sources=1, ft_steps=400,
                  pseudo_types=8, ablation_levels=(2, 3, 4, 5, 6), ablation_finetune=False),
    # the shipped checkpoints' settings, both generator sets, all 25 KADID types, ablation
    # followed by fine-tuning as in the paper
    "full": dict(size=160, crop=64, sets=("live", "tid"), rank_steps=1500, sources=2,
                 ft_steps=800, pseudo_types=None, ablation_levels=(2, 3, 4, 5, 6),
                 ablation_finetune=True),
}


def run(cfg: Config, out: Path) -> dict:
    from qbench.rankiqa.experiment import run as experiment

    tables = experiment(cfg, progress=not cfg.quiet, device=cfg.device)
    for name in ("ranking", "correlations", "ablation", "training"):
        tables[name].to_parquet(out / f"{name}.parquet", index=False)
    return {"device": cfg.device, "splits": tables["info"]}


STUDY = Study("rankiqa", __doc__, Config, PRESETS, run)

if __name__ == "__main__":
    main(STUDY)
