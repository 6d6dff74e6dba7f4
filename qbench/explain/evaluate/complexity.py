"""Complexity and sparseness of a map: a good explanation is concentrated.

* :func:`gini` -- sparseness (Chalasani et al., 2020): the Gini index of |map| over pixels,
  0 for a uniform map, → 1 when all mass sits on one pixel. Higher = sparser.
* :func:`entropy` -- complexity (Bhatt et al., 2020): Shannon entropy of |map| / Σ|map|,
  divided by log(H·W) when ``normalized`` (0 = one pixel, 1 = uniform). Lower = simpler.
* :func:`total_variation` -- roughness: mean absolute difference between neighbouring pixels
  of the min-max normalised map. Lower = smoother.
* :func:`fine_detail` -- a resolution proxy: the share of the map's spectral energy finer than
  a given grid (e.g. the CAM layer's). Higher = finer detail.

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


def fine_detail(maps: torch.Tensor, cell: float) -> torch.Tensor:
    """Per-image share of the map's spectral energy finer than a grid of ``cell`` px.

    A resolution proxy: the min-max normalised, mean-removed map's power spectrum is split at
    the Nyquist frequency of a ``cell``-px grid (1 / (2·cell) cycles/px, per axis, Chebyshev
    radius); the share above it is detail that a map computed on that grid and upsampled
    cannot carry except through its interpolation kernel. For CAM methods, ``cell`` = input
    side / CAM-layer side. Higher = finer detail; NaN for a constant map.
    """
    m = minmax(maps).double()
    m = m - m.mean((1, 2), keepdim=True)
    power = torch.fft.fft2(m).abs() ** 2
    h, w = m.shape[1:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64).abs()[:, None]
    fx = torch.fft.fftfreq(w, dtype=torch.float64).abs()[None, :]
    high = torch.maximum(fy.expand(h, w), fx.expand(h, w)) > 1.0 / (2.0 * cell)
    total = power.flatten(1).sum(1)
    share = (power * high).flatten(1).sum(1) / total.clamp(min=1e-300)
    return torch.where(total > 1e-20, share, torch.full_like(share, float("nan"))).float()
