"""Tiny seeded networks for explainer tests (fast on CPU, deterministic, eval mode).

* ``tiny_cnn(num_classes=3, seed=0)`` -- a classifier whose ``cam_layer`` is a conv block with
  an 8×8 output on a 32×32 input (stride 4), i.e. coarse enough that Grad-CAM's upsampling is
  visible;
* ``tiny_regressor(seed=0)`` -- the same backbone with one scalar output per image (shape N),
  standing in for an IQA model.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """conv(3→8) → ReLU → pool → conv(8→16) → ReLU → pool → conv(16→16) → ReLU [cam_layer]
    → global average pool → linear(16→num_outputs)."""

    def __init__(self, num_outputs: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(16, num_outputs)
        # a module whose output (N×16×8×8 on a 32×32 input) the CAM methods read by default
        self.cam_layer = self.features[7]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


class TinyRegressor(TinyCNN):
    """A scalar output per image (shape N), like an IQA score."""

    def __init__(self) -> None:
        super().__init__(num_outputs=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, 0]


def tiny_cnn(num_classes: int = 3, seed: int = 0) -> TinyCNN:
    """A randomly initialised classifier (seeded), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyCNN(num_classes)
    return model.eval()


def tiny_regressor(seed: int = 0) -> TinyRegressor:
    """A randomly initialised scalar regressor (seeded), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyRegressor()
    return model.eval()


def tiny_images(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """N×3×size×size images in [0, 1] from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen)
