"""RankIQA (Liu, van de Weijer & Bagdanov, ICCV 2017) in PyTorch.

Learn to rank synthetically distorted images (levels of one distortion on one reference),
with the efficient Siamese loss (one forward pass per batch) or the naive pairwise one, then
fine-tune one branch on MOS (or full-reference pseudo-labels) with MSE.
"""

from __future__ import annotations

from qbench.rankiqa.evaluate import correlations, ranking_accuracy, score_images, score_ranked
from qbench.rankiqa.net import ARCH, RankCNN
from qbench.rankiqa.pairs import efficient_loss, level_pairs, naive_loss, pair_accuracy
from qbench.rankiqa.ranked import (
    RankedSet,
    build,
    generator_names,
    level_subset,
    load_references,
    sample_batch,
    split_references,
)
from qbench.rankiqa.targets import TargetSet, from_dataset, pseudo_labelled, split_by_reference
from qbench.rankiqa.train import (
    FinetuneConfig,
    RankConfig,
    finetune,
    new_model,
    score_targets,
    train_ranking,
)

__all__ = ["ARCH", "FinetuneConfig", "RankCNN", "RankConfig", "RankedSet", "TargetSet", "build",
           "correlations", "efficient_loss", "finetune", "from_dataset", "generator_names",
           "level_pairs", "level_subset", "load_references", "naive_loss", "new_model",
           "pair_accuracy", "pseudo_labelled", "ranking_accuracy", "sample_batch",
           "score_images", "score_ranked", "score_targets", "split_by_reference",
           "split_references", "train_ranking"]
