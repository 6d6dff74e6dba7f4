"""CAMERAS (Jalwana, Akhtar, Bennamoun, Mian, CVPR 2021): Grad-CAM-style saliency at a
higher resolution, from the layer's activations and gradients accumulated over upsampled
copies of the input.

For each scale factor s (default: 8 factors evenly spaced from 1 to 924/224, i.e. the official
code's resolutions 224, 324, ..., 924 for a 224-pixel input), the image is resized to
round(s·H) × round(s·W) (bicubic, ``align_corners=False``; scale 1 uses the image itself); one
forward pass and one backward pass from the target's pre-softmax logit (or a callable's value
for a scalar output) record the layer's activations A_s and gradients G_s = ∂y/∂A_s. Both are
resized bilinearly (``align_corners=False``) to the input size and averaged over the scales:

    saliency = ReLU(Σ_k mean_s(A_s)_k ⊙ mean_s(G_s)_k),  then min-max normalised per image.

The official code averages over the scales whose top-1 class agrees with the base scale's when
no class is given, and over all scales when one is given; ``explain`` always passes a class
(the predicted one by default), so the default here averages over all scales, and
``only_agreeing_scales=True`` restores the filter (per image; the base scale always counts).

Differences from the reference code, by design: batches of images (``batch_size`` images at a
time; the reference does one), any device (the reference is CUDA-only), non-square inputs, and
the backward pass stops at the layer (gradients w.r.t. its output are the same).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from qbench.errors import QbenchError
from qbench.explain.cam import normalize_maps
from qbench.explain.layers import TargetSpec, capture, pin_target, resolve_layer, target_scores
from qbench.explain.registry import register

OFFICIAL_MAX_SCALE = 924 / 224  # the reference code's range(224, 1000, 100) on 224-pixel input


def scale_factors(num_scales: int = 8, max_scale: float = OFFICIAL_MAX_SCALE) -> list[float]:
    """``num_scales`` factors evenly spaced from 1 to ``max_scale`` (1 first)."""
    if num_scales < 1 or max_scale < 1:
        raise QbenchError(f"need num_scales >= 1 and max_scale >= 1, got {num_scales}, "
                          f"{max_scale}")
    if num_scales == 1:
        return [1.0]
    step = (max_scale - 1.0) / (num_scales - 1)
    return [1.0 + i * step for i in range(num_scales)]


def _resized(images: torch.Tensor, factor: float, mode: str) -> torch.Tensor:
    h, w = images.shape[-2:]
    size = (round(h * factor), round(w * factor))
    if size == (h, w):
        return images
    return F.interpolate(images, size=size, mode=mode, align_corners=False)


def cameras_maps(model: nn.Module, images: torch.Tensor, target: TargetSpec,
                 layer: nn.Module | str | None = None, num_scales: int = 8,
                 max_scale: float = OFFICIAL_MAX_SCALE, scales: Sequence[float] | None = None,
                 only_agreeing_scales: bool = False, normalize: str | None = "minmax",
                 batch_size: int = 4, image_mode: str = "bicubic",
                 channel_chunk: int = 64) -> torch.Tensor:
    """CAMERAS maps, N×H×W (see the module docstring).

    ``scales`` (explicit factors, the first should be 1) overrides ``num_scales``/``max_scale``.
    ``batch_size`` images are processed together (memory: the largest scale's forward and
    backward pass); the activations and gradients are resized to input resolution
    ``channel_chunk`` channels at a time (memory: 2 × batch_size × channel_chunk × H × W).
    """
    factors = list(scales) if scales is not None else scale_factors(num_scales, max_scale)
    if not factors:
        raise QbenchError("CAMERAS needs at least one scale")
    module = resolve_layer(model, layer)
    param = next(model.parameters(), None)
    images = images.to(param.device if param is not None else images.device)
    target = pin_target(model, images, target)
    n = images.shape[0]
    chunks = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size), device=images.device)
        chunks.append(_cameras_chunk(model, module, images[idx], _subset(target, idx),
                                     factors, only_agreeing_scales, image_mode,
                                     channel_chunk))
    saliency = torch.cat(chunks)
    return normalize_maps(saliency, normalize)


def _subset(target: TargetSpec, idx: torch.Tensor) -> TargetSpec:
    if callable(target) and not isinstance(target, torch.Tensor):
        return target
    target = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    return target.expand(len(idx)) if target.numel() == 1 else target.to(idx.device)[idx]


def _cameras_chunk(model: nn.Module, module: nn.Module, images: torch.Tensor,
                   target: TargetSpec, factors: list[float], only_agreeing: bool,
                   image_mode: str, channel_chunk: int) -> torch.Tensor:
    h, w = images.shape[-2:]
    n = images.shape[0]
    recorded = []  # (A_s, G_s, keep_s) at the layer's own resolution for each scale
    base_class = None
    for factor in factors:
        x = _resized(images, factor, image_mode)
        with torch.enable_grad(), capture(module, detach=True) as cap:
            output = model(x)
            acts = cap.last
            if acts.ndim != 4:
                raise QbenchError(f"CAMERAS layer output must be N×K×h×w, got "
                                  f"{tuple(acts.shape)}")
            (grads,) = torch.autograd.grad(target_scores(output, target).sum(), acts)
        keep = torch.ones(n, device=images.device, dtype=acts.dtype)
        if only_agreeing and output.ndim == 2:
            top = output.detach().argmax(1)
            base_class = top if base_class is None else base_class
            keep = (top == base_class).to(acts.dtype)
        recorded.append((acts.detach(), grads, keep))
    count = torch.stack([keep for _, _, keep in recorded]).sum(0)[:, None, None, None]
    saliency = torch.zeros(n, h, w, device=images.device, dtype=images.dtype)
    channels = recorded[0][0].shape[1]
    with torch.no_grad():  # channel groups bound the memory to n × channel_chunk × H × W
        for c0 in range(0, channels, channel_chunk):
            group = slice(c0, c0 + channel_chunk)
            sum_a = sum_g = None
            for acts, grads, keep in recorded:
                up_a = F.interpolate(acts[:, group], size=(h, w), mode="bilinear",
                                     align_corners=False) * keep[:, None, None, None]
                up_g = F.interpolate(grads[:, group], size=(h, w), mode="bilinear",
                                     align_corners=False) * keep[:, None, None, None]
                sum_a = up_a if sum_a is None else sum_a + up_a
                sum_g = up_g if sum_g is None else sum_g + up_g
            saliency += ((sum_a / count) * (sum_g / count)).sum(1)
    return saliency.clamp(min=0)


@register("cameras", "cam", needs_layer=True, differentiable=False,
          summary="CAMERAS: activations and gradients averaged over 8 input upsamplings "
                  "(×1 … ×4.125), ReLU(Σ_k Ā_k ⊙ Ḡ_k), min-max normalised")
def cameras(model: nn.Module, images: torch.Tensor, target: TargetSpec,
            layer: nn.Module | str | None = None, num_scales: int = 8,
            max_scale: float = OFFICIAL_MAX_SCALE, scales: Sequence[float] | None = None,
            only_agreeing_scales: bool = False, normalize: str | None = "minmax",
            batch_size: int = 4, channel_chunk: int = 64) -> torch.Tensor:
    """CAMERAS map (see ``cameras_maps``)."""
    return cameras_maps(model, images, target, layer, num_scales, max_scale, scales,
                        only_agreeing_scales, normalize, batch_size,
                        channel_chunk=channel_chunk)
