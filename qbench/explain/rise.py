"""RISE (Petsiuk, Das, Saenko, BMVC 2018): saliency as the expected score under random masks.

``n_masks`` binary grids of ``cells``×``cells`` cells, each cell kept with probability ``p``,
are upsampled bilinearly to (cells+1)·⌈H/cells⌉ and cropped at a random shift in
[0, ⌈H/cells⌉) per axis, giving smooth masks M_i. For each image,
``saliency = Σ_i f(x ⊙ M_i) · M_i / (n_masks · p)`` with f the target's softmax probability
(classifier) or the model's score (scalar-output model). The masks come from a
``torch.Generator`` seeded with ``seed``: same seed, same map. The same masks serve every
image of the batch (as in the paper). Paper defaults: N 4000–8000, s = 7–8, p = 0.5; the
defaults here are N = 4000, s = 7, p = 0.5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qbench.explain.references import Target, model_device, target_score, tile_target
from qbench.explain.registry import register


def rise_masks(n: int, height: int, width: int, cells: int = 7, p: float = 0.5,
               seed: int = 0) -> torch.Tensor:
    """n×H×W float masks in [0, 1] (CPU), deterministic for a seed."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"RISE keep probability p must lie in (0, 1], got {p}")
    gen = torch.Generator().manual_seed(int(seed))
    grid = (torch.rand(n, 1, cells, cells, generator=gen) < p).float()
    ch, cw = math.ceil(height / cells), math.ceil(width / cells)
    up = F.interpolate(grid, size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear",
                       align_corners=False)
    dy = torch.randint(0, ch, (n,), generator=gen)
    dx = torch.randint(0, cw, (n,), generator=gen)
    rows = dy[:, None] + torch.arange(height)[None, :]
    cols = dx[:, None] + torch.arange(width)[None, :]
    up = up[:, 0]
    return up[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]].clamp_(0, 1)


@register("rise", family="perturbation", needs_layer=False, differentiable=False,
          summary="RISE: expected target score under random smooth binary masks")
def rise(model: nn.Module, images: torch.Tensor, target: Target, layer=None,
         n_masks: int = 4000, cells: int = 7, p: float = 0.5, seed: int = 0,
         batch_size: int = 256, score: str = "prob") -> torch.Tensor:
    """RISE map (N×H×W, ≥ 0) of ``images``; see the module docstring."""
    n, _, h, w = images.shape
    device = model_device(model, images)
    x = images.to(device)
    masks = rise_masks(n_masks, h, w, cells, p, seed).to(device)
    sal = torch.zeros(n, h, w, device=device)
    per_chunk = max(1, batch_size // max(1, n))
    with torch.no_grad():
        for start in range(0, n_masks, per_chunk):
            m = masks[start:start + per_chunk]  # k×H×W
            k = m.shape[0]
            batch = (m[:, None, None] * x[None]).reshape(k * n, *x.shape[1:])
            s = target_score(model(batch), tile_target(target, k), score).reshape(k, n)
            sal += torch.einsum("kn,khw->nhw", s.float(), m)
    return (sal / (n_masks * p)).to(images.device)
