"""The ranking loss, two ways: efficient (one forward pass per batch) and naive (per pair).

A batch is laid out as S sources x T types x L levels, level 0 best. The ranked pairs are all
(i, j) with i < j inside one (source, type) block: ``S * T * L * (L - 1) / 2`` pairs. The
hinge is ``max(0, margin - (s_i - s_j))``, averaged over pairs.

* efficient Siamese (Liu et al. 2017, Sec. 3.3): score all S*T*L images in ONE forward pass,
  form every pair's difference from the score tensor, one backward;
* naive Siamese: the same pairs, each image of each pair through its own forward pass.

Without batch-dependent layers both give the same loss and the same gradients.
"""

from __future__ import annotations

import torch
from torch import nn


def level_pairs(n_levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (better, worse) of every ordered pair of ``n_levels`` levels (0 is best)."""
    better, worse = torch.triu_indices(n_levels, n_levels, offset=1)
    return better, worse


def n_pairs(sources: int, types: int, n_levels: int) -> int:
    return sources * types * n_levels * (n_levels - 1) // 2


def hinge(diff: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of ``max(0, margin - diff)`` where ``diff = s_better - s_worse``."""
    return torch.relu(margin - diff).mean()


def efficient_loss(model: nn.Module, batch: torch.Tensor, margin: float = 1.0
                   ) -> tuple[torch.Tensor, int]:
    """The ranking loss of a S x T x L x 3 x H x W batch from one forward pass.

    Returns (loss, forward passes = 1).
    """
    s, t, n_levels = batch.shape[:3]
    scores = model(batch.flatten(0, 2)).view(s, t, n_levels)
    better, worse = level_pairs(n_levels)
    return hinge(scores[..., better] - scores[..., worse], margin), 1


def naive_loss(model: nn.Module, batch: torch.Tensor, margin: float = 1.0
               ) -> tuple[torch.Tensor, int]:
    """The same loss with two forward passes (one image each) per pair.

    Returns (loss, forward passes = 2 x pairs).
    """
    s, t, n_levels = batch.shape[:3]
    better, worse = level_pairs(n_levels)
    diffs, passes = [], 0
    for a in range(s):
        for b in range(t):
            for i, j in zip(better.tolist(), worse.tolist(), strict=True):
                s_i = model(batch[a, b, i : i + 1])
                s_j = model(batch[a, b, j : j + 1])
                diffs.append(s_i - s_j)
                passes += 2
    return hinge(torch.cat(diffs), margin), passes


def pair_accuracy(scores: torch.Tensor) -> torch.Tensor:
    """Share of correctly ordered level pairs per type for R x T x L scores (ties count 1/2).

    Returns a length-T tensor (float64), averaged over references and pairs.
    """
    better, worse = level_pairs(scores.shape[-1])
    d = scores[..., better].double() - scores[..., worse].double()
    right = (d > 0).double() + 0.5 * (d == 0).double()
    return right.mean(dim=(0, 2))
