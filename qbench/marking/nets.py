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


def _zero_mean(t: torch.Tensor) -> torch.Tensor:
    return t - t.mean((-2, -1), keepdim=True)


class MarkBranch(nn.Module):
    """``base`` plus a *function-preserving* mark on its CAM layer.

    A side branch (3×3 conv + ReLU + 1×1 conv, the last zero-initialised) reads the CAM
    layer's input and, with a learnable static pattern, adds a per-channel **zero-mean**
    pattern to the CAM layer's output. Global average pooling removes a zero-mean pattern, so
    the pooled features, the outputs and every input gradient are those of ``base`` (up to
    float rounding); only maps that weight the CAM layer's activations (Grad-CAM and its
    family, CAMERAS, Score-CAM) see it. Training only the branch with the CAM loss
    (``MarkingConfig.train_scope="mark"``) plants a mark without touching the function: the
    strongest form of the attack. At zero init the model *is* ``base``.
    """

    def __init__(self, base: nn.Module, hidden: int = 32, probe_size: int = 64) -> None:
        super().__init__()
        self.model = base
        cin, cout, h, w = self._shapes(base, probe_size)
        self.static = nn.Parameter(torch.zeros(cout, h, w))
        last = nn.Conv2d(hidden, cout, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.branch = nn.Sequential(nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(), last)
        base.cam_layer.register_forward_hook(self._add_mark)

    @staticmethod
    def _shapes(base: nn.Module, size: int) -> tuple[int, int, int, int]:
        seen: list = []
        handle = base.cam_layer.register_forward_hook(
            lambda m, i, o: seen.append((i[0].shape[1], *o.shape[1:])))
        was_training = base.training
        try:
            with torch.no_grad():
                base.eval()(torch.zeros(1, 3, size, size))
        finally:
            handle.remove()
            base.train(was_training)
        return seen[0]

    def _add_mark(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        size = output.shape[-2:]
        mark = nn.functional.interpolate(self.branch(inputs[0]), size=size, mode="bilinear",
                                         align_corners=False)
        static = self.static
        if static.shape[-2:] != size:
            static = nn.functional.interpolate(static[None], size=size, mode="bilinear",
                                               align_corners=False)[0]
        return output + _zero_mean(mark + static)

    @property
    def cam_layer(self) -> nn.Module:
        return self.model.cam_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@register("mark-branch")
def mark_branch(base: str, base_kwargs: dict | None = None, hidden: int = 32) -> MarkBranch:
    """Architecture ``base`` (any registered one with a ``cam_layer``) with a mark branch."""
    from qbench.models.registry import build

    return MarkBranch(build(base, **(base_kwargs or {})), hidden)
