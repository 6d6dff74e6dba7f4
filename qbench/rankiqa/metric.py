"""``rankiqa`` and ``rankiqa-ft`` as qbench metrics: a zoo checkpoint + the crop protocol.

Scores are the mean over 30 random crops (the paper's test protocol; crop size = the size the
checkpoint was trained with = the metric's minimum input size). Higher is better.
"""

from __future__ import annotations

import torch

from qbench.metrics.base import MetricInfo, check_inputs
from qbench.models import CheckpointError, find, load, provenance
from qbench.models.checkpoint import SHIPPED, user_dir
from qbench.rankiqa.evaluate import N_CROPS, score_images

TRAIN_COMMANDS = {
    "rankiqa": "qbench rankiqa train --name rankiqa",
    "rankiqa-ft": "qbench rankiqa finetune --from rankiqa --name rankiqa-ft",
}


class MissingCheckpointError(CheckpointError):
    """A RankIQA checkpoint is not in the zoo; the message names the path and the command."""


def locate(name: str):
    """The ``.pt`` path of checkpoint ``name`` or one clear error with the fix."""
    try:
        return find(name)
    except CheckpointError:
        command = TRAIN_COMMANDS.get(name, f"qbench rankiqa train --name {name}")
        raise MissingCheckpointError(
            f"RankIQA checkpoint {name!r} not found: looked for {user_dir() / (name + '.pt')} "
            f"and {SHIPPED / (name + '.pt')}; create it with `{command}`") from None


def _info(checkpoint: str, prov) -> MetricInfo:
    return MetricInfo(
        name=checkpoint, version=prov.sha256[:12], kind="NR",
        higher_is_better=True, min_size=int(prov.extra["crop"]), needs_weights=True,
        trained_on=tuple(prov.extra.get("trained_on", ())),
        description=prov.extra.get("description", "RankIQA"))


def rankiqa_info() -> MetricInfo:
    """``rankiqa``'s metadata from its checkpoint's provenance (the weights are not read)."""
    return _info("rankiqa", provenance(locate("rankiqa")))


def rankiqa_ft_info() -> MetricInfo:
    """``rankiqa-ft``'s metadata from its checkpoint's provenance (the weights are not read)."""
    return _info("rankiqa-ft", provenance(locate("rankiqa-ft")))


class RankIQAMetric:
    """A no-reference quality score from a RankIQA checkpoint (higher is better)."""

    def __init__(self, checkpoint: str = "rankiqa", n_crops: int = N_CROPS, seed: int = 0,
                 device: str = "cpu") -> None:
        path = locate(checkpoint)
        self.model, self.provenance = load(path, map_location=device)
        self.device = device
        self.crop = int(self.provenance.extra["crop"])
        self.n_crops, self.seed = int(n_crops), int(seed)
        self.info = _info(checkpoint, self.provenance)

    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        x = images.to(self.device, torch.float32)
        return score_images(self.model, x, self.crop, self.n_crops, self.seed).cpu()


def rankiqa(device: str = "cpu") -> RankIQAMetric:
    """The ranking-only RankIQA checkpoint as a metric."""
    return RankIQAMetric("rankiqa", device=device)


def rankiqa_ft(device: str = "cpu") -> RankIQAMetric:
    """The fine-tuned RankIQA checkpoint as a metric."""
    return RankIQAMetric("rankiqa-ft", device=device)
