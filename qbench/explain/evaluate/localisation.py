"""Localisation: does the map point at the object? (``scenes`` ships one object mask per image.)

* :func:`pointing_game` (Zhang et al., ECCV 2016): a hit when the map's maximum lies on the
  object (optionally within ``tolerance`` px of it; the paper uses 15 px at 224 px). When the
  maximum is attained at several pixels, the value is the fraction of those pixels on the
  object -- the expected hit under random tie-breaking -- so a constant map scores the object's
  share of the image (chance), never an arbitrary 0 or 1.
* :func:`energy_pointing_game` (Wang et al., Score-CAM, 2020): the share of the map's energy
  inside the object, Σ map·mask / Σ map, on the map min-max normalised per image (as Score-CAM
  does; ``normalize=False`` uses the map clipped at 0 instead). Normalising matters for maps
  with a large constant offset such as RISE's expected score, whose raw energy is spread over
  the whole image. NaN for a map with no energy (a constant map).

Both return one value per image (Tensor[N]), higher is better.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qbench.explain.evaluate.complexity import minmax


def _as_masks(masks, like: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(masks).to(like.device)
    if m.dtype == torch.uint8:
        m = m.float() / 255.0
    m = m.float()
    if m.shape != like.shape:
        raise ValueError(f"masks {tuple(m.shape)} and maps {tuple(like.shape)} differ in shape")
    return m > 0.5


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary N×H×W mask grown by a disk of ``radius`` px."""
    if radius <= 0:
        return mask
    r = int(radius)
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    disk = ((yy ** 2 + xx ** 2) <= r * r).float().to(mask.device)[None, None]
    out = F.conv2d(mask.float()[:, None], disk, padding=r)
    return out[:, 0] > 0


def pointing_game(maps: torch.Tensor, masks, tolerance: int = 0) -> torch.Tensor:
    """Per-image hit (1/0, or the tie fraction) of the map's maximum on the object mask."""
    maps = torch.as_tensor(maps).float()
    obj = _dilate(_as_masks(masks, maps), tolerance)
    flat = maps.flatten(1)
    top = flat == flat.max(1, keepdim=True).values
    return (top & obj.flatten(1)).sum(1).float() / top.sum(1).float()


def energy_pointing_game(maps: torch.Tensor, masks, normalize: bool = True) -> torch.Tensor:
    """Per-image share of the map energy on the object (NaN without energy)."""
    maps = torch.as_tensor(maps).float()
    maps = minmax(maps) if normalize else maps.clamp(min=0)
    obj = _as_masks(masks, maps)
    total = maps.flatten(1).sum(1)
    inside = (maps * obj).flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=1e-30),
                       torch.full_like(total, float("nan")))
