"""``iqa-cnn``: a small no-reference quality regressor whose Grad-CAM is fine enough to mark.

normalise → four 3×3 conv + BN + ReLU blocks (strides 2, 2, 1, 1: the CAM layer is at 1/4 of
the input side, 16×16 on a 64 px image) → global average pool → MLP → one score per image
(shape N). Registered in ``qbench.models`` so marked checkpoints load by name (import
``qbench.marking`` first).
"""

from __future__ import annotations

import torch
from torch import nn

from qbench.models.nets import Normalize, conv_bn
from qbench.models.registry import register


class IQACNN(nn.Module):
    """A scalar quality score per image; ``cam_layer`` = the last conv block."""

    def __init__(self, widths: tuple[int, ...] = (24, 48, 48, 64), hidden: int = 32) -> None:
        super().__init__()
        strides = (2, 2) + (1,) * (len(widths) - 2)
        layers, cin = [], 3
        for w, s in zip(widths, strides, strict=True):
            layers.append(conv_bn(cin, w, 3, s))
            cin = w
        self.normalize = Normalize()
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x)).mean((2, 3)))[:, 0]


@register("iqa-cnn")
def iqa_cnn(widths: tuple[int, ...] = (24, 48, 48, 64), hidden: int = 32) -> IQACNN:
    return IQACNN(tuple(widths), hidden)
