"""ImageNet-C / CIFAR-10-C corruptions (Hendrycks & Dietterich 2019), severities 1-5.

Parameters are the published tables (see ANCHORS.md). Spatial parameters are scaled by
``min(H, W) / reference side``: 224 for the ImageNet table, 32 for the CIFAR table, so a
64x64 image under the CIFAR table gets twice the CIFAR blur radius.
"""

from __future__ import annotations

import torch

from qbench.corrupt import ops
from qbench.corrupt.registry import Corruption, register
from qbench.corrupt.seeding import per_image

IN, C10 = "imagenet", "cifar"
SIDES = {IN: 224, C10: 32}


def _gaussian_noise(x, sigma, gens):
    noise = per_image(gens, lambda g: torch.randn(x.shape[1:], generator=g)).to(x)
    return (x + noise * sigma).clamp_(0, 1)


def _shot_noise(x, lam, gens):
    rates = (x.detach().cpu() * lam).unbind(0)
    sampled = torch.stack([torch.poisson(r, generator=g) for r, g in zip(rates, gens, strict=True)])
    return (sampled.to(x) / lam).clamp_(0, 1)


def _gaussian_blur(x, sigma, gens):
    return ops.gaussian_blur(x, sigma).clamp_(0, 1)


def _contrast(x, c, gens):
    means = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - means) * c + means).clamp_(0, 1)


def _brightness(x, v, gens):
    # ImageNet-C adds v to the V channel in HSV, i.e. every channel is scaled so that max = V + v.
    maxc = x.amax(dim=1, keepdim=True)
    new = (maxc + v).clamp(0, 1)
    return torch.where(maxc > 0, x * new / maxc.clamp_min(1e-12), new.expand_as(x)).clamp_(0, 1)


def _jpeg(x, q, gens):
    return ops.jpeg(x, q)


def _scale_linear(p, ratio):
    return p * ratio


register(Corruption("gaussian_noise", "noise", _gaussian_noise,
                    {IN: (.08, .12, .18, .26, .38), C10: (.04, .06, .08, .09, .10)},
                    random=True, source="imagenet-c"))
register(Corruption("shot_noise", "noise", _shot_noise,
                    {IN: (60, 25, 12, 5, 3), C10: (500, 250, 100, 75, 50)},
                    random=True, source="imagenet-c"))
register(Corruption("gaussian_blur", "blur", _gaussian_blur,
                    {IN: (1, 2, 3, 4, 6), C10: (.4, .6, .7, .8, 1)},
                    random=False, source="imagenet-c", reference_size=dict(SIDES),
                    scale=_scale_linear))
register(Corruption("contrast", "color", _contrast,
                    {IN: (.4, .3, .2, .1, .05), C10: (.75, .5, .4, .3, .15)},
                    random=False, source="imagenet-c"))
register(Corruption("brightness", "color", _brightness,
                    {IN: (.1, .2, .3, .4, .5), C10: (.05, .1, .15, .2, .3)},
                    random=False, source="imagenet-c"))
register(Corruption("jpeg_compression", "compression", _jpeg,
                    {IN: (25, 18, 15, 10, 7), C10: (80, 65, 58, 50, 40)},
                    random=False, source="imagenet-c"))
