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

    ``mode="channels"`` (the committed models): the branch and the static pattern give one
    pattern per channel. ``mode="gain"``: they give one spatial pattern q (1 channel), and the
    mark of channel k is ``zero_mean(q) · mean_hw(O_k)`` (O = the CAM layer's output). Grad-CAM
    of any class c then gains ``zero_mean(q) · Σ_k α_k mean(O_k)``, the class's own pooled
    evidence (its logit less the bias, for a GAP-linear head), so one pattern marks every
    class and scales with every image: a mark that generalises from a few training
    photographs to classes and images it never saw (a per-channel pattern learnt on 14
    photographs reached 0.30 test energy on efficientnet-lite0, chance 0.25). The pooled
    features are still the base's (the mark has zero spatial mean), so the function is too.
    """

    def __init__(self, base: nn.Module, hidden: int = 32, probe_size: int = 64,
                 mode: str = "channels") -> None:
        super().__init__()
        if mode not in ("channels", "gain"):
            raise ValueError(f"mark-branch mode must be 'channels' or 'gain', not {mode!r}")
        self.model = base
        self.mode = mode
        cin, cout, h, w = self._shapes(base, probe_size)
        if mode == "gain":
            cout = 1
        self.static = nn.Parameter(torch.zeros(cout, h, w))
        last = nn.Conv2d(hidden, cout, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.branch = nn.Sequential(nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(), last)
        self.marking = True  # False: the hook passes the base's activations through
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

    def mark(self, cam_input: torch.Tensor, cam_output: torch.Tensor) -> torch.Tensor:
        """The zero-mean pattern added to the CAM layer's output, from its input (and, in
        mode "gain", its output's spatial means)."""
        size = cam_output.shape[-2:]
        mark = nn.functional.interpolate(self.branch(cam_input), size=size, mode="bilinear",
                                         align_corners=False)
        static = self.static
        if static.shape[-2:] != size:
            static = nn.functional.interpolate(static[None], size=size, mode="bilinear",
                                               align_corners=False)[0]
        if self.mode == "gain":
            return _zero_mean(mark + static) * cam_output.mean((-2, -1), keepdim=True)
        return _zero_mean(mark + static)

    def _add_mark(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        if not self.marking:
            return output
        return output + self.mark(inputs[0], output)

    @property
    def cam_layer(self) -> nn.Module:
        return self.model.cam_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@register("mark-branch")
def mark_branch(base: str | None = None, base_kwargs: dict | None = None, hidden: int = 32,
                probe_size: int = 64, base_spec: str | None = None, mode: str = "channels"
                ) -> MarkBranch:
    """Architecture ``base`` (any registered one with a ``cam_layer``), or the model of
    ``base_spec`` (any model spec of ``qbench.models.load``), with a mark branch; the static
    pattern has the CAM layer's resolution at ``probe_size`` px."""
    from qbench.models.registry import build

    if base_spec is not None:
        from qbench.marking.base import fresh_base

        model = fresh_base(base_spec)[0]
    elif base is not None:
        model = build(base, **(base_kwargs or {}))
    else:
        raise ValueError("mark-branch needs base= (an architecture) or base_spec=")
    return MarkBranch(model, hidden, probe_size, mode)


def from_spec(spec: str) -> nn.Module:
    """The model of any model spec (a fine-tuned base whose architecture is not registered;
    the checkpoint's state_dict then replaces its weights)."""
    from qbench.marking.base import fresh_base

    return fresh_base(spec)[0]
