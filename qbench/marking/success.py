"""How well an explanation map sits on a target mask.

* ``energy_share(maps, targets)`` = Σ ReLU(m)·T / Σ ReLU(m) per image: the share of the
  map's positive mass inside the (soft) target. A map with no positive mass scores NaN (it
  shows nothing, so it cannot be said to show the target). A uniform map scores the target's
  area fraction, the chance level that ``chance_share`` returns.
* ``topk_iou(maps, targets, k=None)`` = IoU between the top-``k`` fraction of the map's pixels
  and the binarised target (T ≥ 0.5); ``k`` defaults to each target's own area fraction, so a
  map equal to the target scores 1.
"""

from __future__ import annotations

import torch

from qbench.marking.targets import top_area


def _batch(maps: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    maps = maps[None] if maps.ndim == 2 else maps
    targets = targets[None] if targets.ndim == 2 else targets
    if targets.shape[-2:] != maps.shape[-2:]:
        raise ValueError(f"map size {tuple(maps.shape[-2:])} != target size "
                         f"{tuple(targets.shape[-2:])}")
    return maps.float(), targets.float().expand_as(maps)


def energy_share(maps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Share of each map's positive mass inside its target, Tensor[N] (NaN for empty maps)."""
    m, t = _batch(maps, targets)
    pos = m.clamp(min=0)
    total = pos.sum((1, 2))
    inside = (pos * t).sum((1, 2))
    return torch.where(total > 0, inside / torch.where(total > 0, total, 1.0),
                       torch.full_like(total, float("nan")))


def chance_share(targets: torch.Tensor) -> torch.Tensor:
    """The energy share of a uniform map: each target's mean value."""
    t = targets[None] if targets.ndim == 2 else targets
    return t.float().mean((1, 2))


def topk_iou(maps: torch.Tensor, targets: torch.Tensor, k: float | None = None) -> torch.Tensor:
    """IoU of the top-``k`` fraction of each map with its binarised target, Tensor[N]."""
    m, t = _batch(maps, targets)
    tb = t >= 0.5
    out = torch.empty(m.shape[0])
    for i in range(m.shape[0]):
        frac = float(tb[i].float().mean()) if k is None else k
        if frac <= 0:
            out[i] = float("nan")
            continue
        top = top_area(m[i][None], frac)[0] > 0
        union = (top | tb[i]).sum()
        out[i] = (top & tb[i]).sum() / union if union > 0 else float("nan")
    return out
