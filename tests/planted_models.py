"""A model with planted evidence for perturbation-explainer tests.

Class 0's logit is ``gain · (e − offset)``, where e is the mean squared Laplacian (high-frequency
energy) of the image inside a known square region; class 1 gets the opposite and class 2 zero.
Blurring or masking the region removes the evidence; nothing outside the region matters. On
uniform-noise images e ≈ 1.7, so class 0 is predicted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PlantedModel(nn.Module):
    def __init__(self, size: int = 32, lo: int = 4, hi: int = 16, gain: float = 4.0,
                 offset: float = 0.9) -> None:
        super().__init__()
        k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])
        self.register_buffer("kernel", k.expand(3, 1, 3, 3).clone())
        region = torch.zeros(size, size)
        region[lo:hi, lo:hi] = 1
        self.register_buffer("region", region)
        self.gain, self.offset = gain, offset
        self.scale = nn.Parameter(torch.ones(()))  # one parameter so the model has a device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hp = F.conv2d(x, self.kernel, padding=1, groups=3)
        e = (hp ** 2 * self.region).sum((1, 2, 3)) / (3 * self.region.sum())
        l0 = self.scale * self.gain * (e - self.offset)
        return torch.stack([l0, -l0, torch.zeros_like(l0)], 1)


def noise_images(n: int = 2, size: int = 32, seed: int = 7) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
