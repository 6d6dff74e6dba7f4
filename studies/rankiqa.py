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
report.html (qbench/report/rankiqa.py).
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


def main() -> Path:
    from qbench.device import add_device_argument
    from qbench.rankiqa.experiment import StudyConfig, run
    from qbench.report import finish_study

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="default results/rankiqa/<preset>")
    ap.add_argument("--dataset", default="refs",
                    help="fine-tuning target: refs (FR pseudo-labels) or kadid10k/tid2013/live")
    ap.add_argument("--root", default=None, help="folder of the real dataset")
    ap.add_argument("--max-items", type=int, default=None, help="real dataset: subset size")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--quiet", action="store_true")
    add_device_argument(ap)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = StudyConfig(**PRESETS[args.preset], seed=args.seed, dataset=args.dataset,
                      root=args.root, max_items=args.max_items)
    out = Path(args.out or f"results/rankiqa/{args.preset}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tables = run(cfg, progress=not args.quiet, device=args.device)
    for name in ("ranking", "correlations", "ablation", "training"):
        tables[name].to_parquet(out / f"{name}.parquet", index=False)
    return finish_study(out, "rankiqa", args.preset, config=asdict(cfg), seed=args.seed,
                        threads=args.threads, device=args.device, splits=tables["info"],
                        seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
