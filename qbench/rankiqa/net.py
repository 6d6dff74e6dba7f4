"""The RankIQA backbone: a small CNN (conv blocks, global mean+std pooling, linear -> 1 score).

The paper uses VGG-16 on 224 px crops; about 60k parameters (a full-resolution first layer,
three stride-2 stages) is what a shared 2-core CPU trains in minutes, and the ranking idea does not depend on the backbone. There
is no batch normalisation on purpose: an image's score must not depend on the other images in
its batch, so the efficient (one forward pass) and the naive (one image per pass) Siamese
schemes compute exactly the same loss and gradients.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from qbench.models import register

ARCH = "rankiqa-cnn"


class RankCNN(nn.Module):
    """Images (Nx3xHxW in [0, 1]) -> N quality scores (higher is better)."""

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1), nn.ReLU()]
        for cin, cout in pairwise(widths):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(widths[-1], widths[-1], 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x - 0.5).flatten(2)
        pooled = torch.cat([f.mean(-1), f.std(-1, unbiased=False)], dim=1)
        return self.head(pooled).squeeze(1)


@register(ARCH)
def build_rank_cnn(widths: tuple[int, ...] | list[int] = (8, 16, 32, 64)) -> RankCNN:
    """A fresh :class:`RankCNN` (seed torch before calling for a reproducible init)."""
    return RankCNN(tuple(int(w) for w in widths))
