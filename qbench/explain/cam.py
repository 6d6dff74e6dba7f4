"""The CAM family, differentiable: Grad-CAM, HiResCAM, Grad-CAM++, XGradCAM, LayerCAM (and
ScoreCAM, which needs no gradients and is not differentiable).

With A = the layer's activations (N×K×h×w), G = ∂y/∂A for the explained scalar y per image
(the target logit, or a callable's value for a scalar output such as an IQA score), the raw
map is ``raw = Σ_k W_k ⊙ A_k`` with

=========  ==============================================================================
gradcam    W_k = mean_ij G_k                                (Selvaraju et al. 2017)
hirescam   W_k = G_k (element-wise)                         (Draelos & Carin 2020)
gradcampp  W_k = Σ_ij a_kij ReLU(G_kij),  a = G² / (2G² + Σ_ab A_kab · G³ + 1e-6), a = 0
           where G = 0 (the closed form of Chattopadhay et al. 2018 used by pytorch-grad-cam)
xgradcam   W_k = Σ_ij G_kij A_kij / (Σ_ab A_kab + 1e-7)     (Fu et al. 2020)
layercam   W_k = ReLU(G_k) (element-wise)                   (Jiang et al. 2021)
scorecam   W_k = softmax_k y(X ⊙ minmax(up(A_k)))           (Wang et al. 2020)
=========  ==============================================================================

and the map is ``ReLU(raw)``, bilinearly upsampled to the input size (``align_corners=False``,
the same sampling as OpenCV's ``resize``), then normalised per image:
``normalize="max"`` (default) divides by the image's maximum, so 0 keeps meaning "no evidence"
and the map lies in [0, 1]; ``"minmax"`` maps min→0, max→1 (pytorch-grad-cam's convention);
``None`` leaves the values as they are (comparable across images and models). The division is
exact (no epsilon); an all-zero map stays zero.

``cam_maps`` is the differentiable entry point: with ``create_graph=True`` the gradients G are
themselves differentiable, so a loss on the map backpropagates to the backbone's weights
(through A and through W). ``detach_weights=True`` detaches W, so the gradient flows through
the activations A only -- the trick of the "marked" IQA models' differentiable Grad-CAM.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from qbench.errors import QbenchError
from qbench.explain.layers import TargetSpec, capture, pin_target, resolve_layer, target_scores
from qbench.explain.registry import register

GRADIENT_CAMS = ("gradcam", "hirescam", "gradcampp", "xgradcam", "layercam")
NORMALIZE = ("max", "minmax", None)


class CamResult(NamedTuple):
    """What ``cam_maps`` returns.

    ``maps``: N×H×W (N×h×w with ``upsample=False``), ReLU'd and normalised as asked;
    ``raw``: N×h×w at the layer's resolution, before ReLU, upsampling and normalisation (for
    losses that want the signed evidence); ``output``: the model output of the same forward pass
    (with its graph when ``create_graph`` or ``keep_graph``), so a trainer can add its task loss
    without a second forward pass.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    output: torch.Tensor


def normalize_maps(maps: torch.Tensor, normalize: str | None = "max") -> torch.Tensor:
    """Per-image normalisation of N×H×W maps: ``"max"`` (divide by the largest |value|, so a
    signed map keeps its signs and a non-negative one lands in [0, 1]), ``"minmax"`` or ``None``.
    The division is exact (no epsilon); an all-zero map stays zero, a constant map becomes 0
    under ``"minmax"``."""
    if normalize is None or normalize == "none":
        return maps
    flat = maps.flatten(1)
    if normalize == "max":
        peak = flat.abs().max(1).values[:, None, None]
        return maps / torch.where(peak > 0, peak, torch.ones_like(peak))
    hi = flat.max(1).values[:, None, None]
    if normalize == "minmax":
        lo = flat.min(1).values[:, None, None]
        span = hi - lo
        return (maps - lo) / torch.where(span > 0, span, torch.ones_like(span))
    raise QbenchError(f"normalize must be one of {NORMALIZE}, not {normalize!r}")


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N×h×w → N×H×W, bilinear with ``align_corners=False``."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def cam_weights(method: str, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """W for ``raw = Σ_k W ⊙ A`` (N×K×1×1 for channel weights, N×K×h×w for element-wise)."""
    if method == "gradcam":
        return grads.mean((2, 3), keepdim=True)
    if method == "hirescam":
        return grads
    if method == "layercam":
        return grads.clamp(min=0)
    if method == "gradcampp":
        g2 = grads * grads
        g3 = g2 * grads
        sum_a = acts.sum((2, 3), keepdim=True)
        a = g2 / (2 * g2 + sum_a * g3 + 1e-6)
        a = torch.where(grads != 0, a, torch.zeros_like(a))
        return (grads.clamp(min=0) * a).sum((2, 3), keepdim=True)
    if method == "xgradcam":
        sum_a = acts.sum((2, 3), keepdim=True)
        return (grads * acts / (sum_a + 1e-7)).sum((2, 3), keepdim=True)
    raise QbenchError(f"unknown gradient CAM {method!r}; known: {', '.join(GRADIENT_CAMS)}")


def _model_device(model: nn.Module, images: torch.Tensor) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else images.device


def cam_maps(model: nn.Module, images: torch.Tensor, target: TargetSpec,
             layer: nn.Module | str | None = None, method: str = "gradcam",
             create_graph: bool = True, detach_weights: bool = False, upsample: bool = True,
             normalize: str | None = "max",
             keep_graph: bool | None = None) -> CamResult:
    """Gradient-based CAM maps of ``model`` for ``images`` that can sit inside a training loss.

    ``target``: LongTensor[N] of class indices, a callable ``output -> Tensor[N]`` (scalar
    outputs), or ``None``: the predicted class of this forward pass, or a scalar output itself.
    ``create_graph=True`` computes G with ``torch.autograd.grad(..., create_graph=True)``: a
    loss on ``maps`` or ``raw`` backpropagates to the model's weights through both A and W;
    ``detach_weights=True`` detaches W (the gradient then flows through A only, and G itself
    needs no graph). ``keep_graph`` (default: ``create_graph or
    detach_weights``) keeps the forward graph so the map and ``output`` stay differentiable;
    with ``keep_graph=False`` everything returned is detached and the backward pass stops at the
    layer. The images' batch is explained in one forward and one backward pass; y is summed
    over the batch, so with BatchNorm in training mode images influence each other's maps.
    """
    if method not in GRADIENT_CAMS:
        raise QbenchError(f"cam_maps supports {', '.join(GRADIENT_CAMS)}, not {method!r}")
    if keep_graph is None:
        keep_graph = create_graph or detach_weights
    module = resolve_layer(model, layer)
    images = images.to(_model_device(model, images))
    with torch.enable_grad(), capture(module, detach=not keep_graph) as cap:
        output = model(images)
        acts = cap.last
        if acts.ndim != 4:
            raise QbenchError(f"CAM layer output must be N×K×h×w, got {tuple(acts.shape)}")
        scores = target_scores(output, target)
        need_graph = keep_graph and create_graph and not detach_weights
        (grads,) = torch.autograd.grad(scores.sum(), acts, create_graph=need_graph,
                                       retain_graph=keep_graph)
        if detach_weights or not keep_graph:
            weights = cam_weights(method, acts.detach(), grads.detach())
        else:
            weights = cam_weights(method, acts, grads)
        raw = (weights * acts).sum(1)
        maps = raw.clamp(min=0)
        if upsample:
            maps = upsample_maps(maps, tuple(images.shape[-2:]))
        maps = normalize_maps(maps, normalize)
    if not keep_graph:
        return CamResult(maps.detach(), raw.detach(), output.detach())
    return CamResult(maps, raw, output)


def score_cam(model: nn.Module, images: torch.Tensor, target: TargetSpec,
              layer: nn.Module | str | None = None, batch_size: int = 64,
              normalize: str | None = "max", upsample: bool = True,
              mask_align_corners: bool = False) -> CamResult:
    """Score-CAM: each channel's upsampled, min-max scaled activation masks the input; the
    channel's weight is the softmax over channels of the target score on the masked image.

    N·K masked images are scored in batches of ``batch_size``. ``mask_align_corners`` selects
    the masks' bilinear sampling (pytorch-grad-cam uses ``align_corners=True``). Not
    differentiable (no graph is kept).
    """
    module = resolve_layer(model, layer)
    images = images.to(_model_device(model, images))
    target = pin_target(model, images, target)
    n, _, h, w = images.shape
    with torch.no_grad():
        with capture(module, detach=True) as cap:
            output = model(images)
        acts = cap.last.detach()
        k = acts.shape[1]
        flat_acts = acts.flatten(0, 1)[:, None]  # (N·K)×1×h×w: one mask per (image, channel)
        scores = torch.empty(n * k, device=images.device, dtype=output.dtype)
        index = torch.arange(n * k, device=images.device)
        for start in range(0, n * k, batch_size):  # masks are made per batch (memory)
            idx = index[start:start + batch_size]
            masks = F.interpolate(flat_acts[idx], size=(h, w), mode="bilinear",
                                  align_corners=mask_align_corners)
            lo = masks.flatten(1).min(1).values[:, None, None, None]
            hi = masks.flatten(1).max(1).values[:, None, None, None]
            masks = (masks - lo) / (hi - lo + 1e-8)
            img_idx = idx // k
            out = model(images[img_idx] * masks)
            scores[start:start + len(idx)] = _scores_for(out, target, img_idx)
        weights = torch.softmax(scores.view(n, k), dim=1)[..., None, None]
        raw = (weights * acts).sum(1)
        maps = raw.clamp(min=0)
        if upsample:
            maps = upsample_maps(maps, (h, w))
        maps = normalize_maps(maps, normalize)
    return CamResult(maps, raw, output)


def _scores_for(output: torch.Tensor, target: TargetSpec, img_idx: torch.Tensor
                ) -> torch.Tensor:
    """Target scores for a batch of masked copies; ``img_idx`` says which image each copies."""
    if callable(target) and not isinstance(target, torch.Tensor):
        return target_scores(output, target)
    target = torch.as_tensor(target, device=output.device, dtype=torch.long).reshape(-1)
    if target.numel() == 1:
        return target_scores(output, target)
    return target_scores(output, target[img_idx.to(target.device)])


def _registered(method: str):
    def fn(model: nn.Module, images: torch.Tensor, target: TargetSpec,
           layer: nn.Module | str | None = None, normalize: str | None = "max",
           upsample: bool = True) -> torch.Tensor:
        return cam_maps(model, images, target, layer, method, create_graph=False,
                        keep_graph=False, upsample=upsample, normalize=normalize).maps

    fn.__name__ = method
    return fn


_SUMMARIES = {
    "gradcam": "Grad-CAM: ReLU(Σ_k mean(∂y/∂A_k) A_k), upsampled, per-image max-normalised",
    "hirescam": "HiResCAM: ReLU(Σ_k ∂y/∂A_k ⊙ A_k), upsampled, per-image max-normalised",
    "gradcampp": "Grad-CAM++: channel weights Σ a·ReLU(∂y/∂A) with second-order a",
    "xgradcam": "XGradCAM: channel weights Σ (∂y/∂A ⊙ A) / Σ A",
    "layercam": "LayerCAM: ReLU(Σ_k ReLU(∂y/∂A_k) ⊙ A_k)",
}

for _name in GRADIENT_CAMS:
    register(_name, "cam", needs_layer=True, differentiable=True,
             summary=_SUMMARIES[_name])(_registered(_name))


@register("scorecam", "cam", needs_layer=True, differentiable=False,
          summary="Score-CAM: channel weights = softmax of the target score on X ⊙ up(A_k)")
def scorecam(model: nn.Module, images: torch.Tensor, target: TargetSpec,
             layer: nn.Module | str | None = None, batch_size: int = 64,
             normalize: str | None = "max", upsample: bool = True,
             mask_align_corners: bool = False) -> torch.Tensor:
    """Score-CAM map (see ``score_cam``)."""
    return score_cam(model, images, target, layer, batch_size, normalize, upsample,
                     mask_align_corners).maps
