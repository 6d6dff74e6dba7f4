"""Complexity and sparseness of a map: a good explanation is concentrated.

* :func:`gini` -- sparseness (Chalasani et al., 2020): the Gini index of |map| over pixels,
  0 for a uniform map, → 1 when all mass sits on one pixel. Higher = sparser.
* :func:`entropy` -- complexity (Bhatt et al., 2020): Shannon entropy of |map| / Σ|map|,
  divided by log(H·W) when ``normalized`` (0 = one pixel, 1 = uniform). Lower = simpler.
* :func:`total_variation` -- roughness: mean absolute difference between neighbouring pixels
  of the min-max normalised map. Lower = smoother.

All return Tensor[N]; an all-zero map gives NaN for gini and entropy (no distribution).
"""

from __future__ import annotations

import math

import torch


def gini(maps: torch.Tensor) -> torch.Tensor:
    """Per-image Gini index of |map| (sparseness)."""
    x = torch.as_tensor(maps).double().abs().flatten(1).sort(1).values
    n = x.shape[1]
    i = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    total = x.sum(1)
    g = ((2 * i - n - 1) * x).sum(1) / (n * total.clamp(min=1e-300))
    return torch.where(total > 0, g, torch.full_like(g, float("nan"))).float()


def entropy(maps: torch.Tensor, normalized: bool = True) -> torch.Tensor:
    """Per-image entropy of the |map| distribution (nats, or / log(HW) when normalized)."""
    x = torch.as_tensor(maps).double().abs().flatten(1)
    total = x.sum(1, keepdim=True)
    p = x / total.clamp(min=1e-300)
    h = -(torch.where(p > 0, p * p.log(), torch.zeros_like(p))).sum(1)
    if normalized:
        h = h / math.log(x.shape[1])
    return torch.where(total[:, 0] > 0, h, torch.full_like(h, float("nan"))).float()


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1] (a constant map becomes zeros)."""
    maps = torch.as_tensor(maps).float()
    flat = maps.flatten(1)
    lo = flat.min(1).values.view(-1, 1, 1)
    span = (flat.max(1).values.view(-1, 1, 1) - lo)
    return torch.where(span > 0, (maps - lo) / span.clamp(min=1e-30), torch.zeros_like(maps))


def total_variation(maps: torch.Tensor) -> torch.Tensor:
    """Per-image mean |neighbour difference| of the min-max normalised map."""
    m = minmax(maps)
    dv = (m[:, 1:, :] - m[:, :-1, :]).abs().flatten(1)
    dh = (m[:, :, 1:] - m[:, :, :-1]).abs().flatten(1)
    return torch.cat([dv, dh], 1).mean(1)
