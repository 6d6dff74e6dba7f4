"""What perturbation methods and faithfulness metrics put in place of removed pixels, and the
score they watch.

* :func:`substitute` -- the "reference" image x_r that stands for *no evidence*: ``zero``
  (black), ``mean`` (each image's mean colour), ``blur`` (Gaussian blur), ``median_blur``,
  ``blur_median`` (mean of the Gaussian and the median blur, Robust Perturbation's reference)
  and ``noise`` (uniform noise, seeded).
* :func:`target_score` -- the number a method explains: the softmax probability (or logit) of
  the target class for a classifier, the model's own score for a scalar-output model (the
  target is then a callable ``output -> Tensor[N]``).

Spatial parameters are quoted by the papers at 224 px; :func:`at_side` scales them linearly
with the image side (``value * side / 224``), so a 64 px image gets the same blur *relative to
its size* as a 224 px one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Target = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
SUBSTITUTES = ("zero", "mean", "blur", "median_blur", "blur_median", "noise")
PAPER_SIDE = 224


def at_side(value_at_224: float, side: int) -> float:
    """A spatial parameter quoted at 224 px, scaled to an image of ``side`` px."""
    return float(value_at_224) * side / PAPER_SIDE


def _odd(k: float) -> int:
    k = max(1, round(k))
    return k if k % 2 == 1 else k + 1


def gaussian_blur(images: torch.Tensor, sigma: float, kernel: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (``kernel`` defaults to 2·ceil(3σ)+1)."""
    if sigma <= 0:
        return images.clone()
    k = _odd(kernel) if kernel is not None else 2 * math.ceil(3 * sigma) + 1
    k = min(k, 2 * (min(images.shape[-2:]) - 1) + 1)  # reflect padding needs pad < side
    r = k // 2
    t = torch.arange(k, dtype=images.dtype, device=images.device) - r
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    c = images.shape[1]
    x = F.pad(images, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def median_blur(images: torch.Tensor, kernel: int) -> torch.Tensor:
    """k×k median filter with reflect padding (like OpenCV's ``medianBlur``)."""
    k = min(_odd(kernel), 2 * (min(images.shape[-2:]) - 1) + 1)
    if k <= 1:
        return images.clone()
    n, c, h, w = images.shape
    r = k // 2
    x = F.pad(images, (r, r, r, r), mode="reflect")
    patches = F.unfold(x, k).view(n, c, k * k, h * w)
    return patches.median(dim=2).values.view(n, c, h, w)


def substitute(images: torch.Tensor, kind: str = "blur", seed: int = 0) -> torch.Tensor:
    """The reference image x_r of each image for a perturbation of type ``kind``.

    ``blur``: Gaussian σ = 5 at 224 px (kernel 11 at 224 px), the RISE insertion substitute;
    ``median_blur``: median filter, 11 px at 224 px; ``blur_median``: their mean (Robust
    Perturbation); ``zero``: black; ``mean``: the image's per-channel mean; ``noise``:
    U(0, 1) noise from ``seed``.
    """
    side = min(images.shape[-2:])
    if kind == "zero":
        return torch.zeros_like(images)
    if kind == "mean":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
    if kind == "blur":
        return gaussian_blur(images, at_side(5.0, side), _odd(at_side(11, side)))
    if kind == "median_blur":
        return median_blur(images, _odd(at_side(11, side)))
    if kind == "blur_median":
        return 0.5 * (substitute(images, "blur") + substitute(images, "median_blur"))
    if kind == "noise":
        gen = torch.Generator().manual_seed(int(seed))
        return torch.rand(images.shape, generator=gen).to(images)
    raise ValueError(f"unknown substitute {kind!r}; known: {', '.join(SUBSTITUTES)}")


def is_classifier_target(target: Target) -> bool:
    return isinstance(target, torch.Tensor)


def target_score(output: torch.Tensor, target: Target, kind: str = "prob") -> torch.Tensor:
    """Tensor[N]: the target's softmax probability (``kind="prob"``) or logit (``"logit"``)
    for class targets; ``target(output)`` for a callable (a scalar-output model)."""
    if not isinstance(target, torch.Tensor):
        return target(output).reshape(-1)
    if output.ndim != 2:
        raise ValueError(f"class targets need N×C model outputs, got {tuple(output.shape)}")
    t = target.to(output.device).reshape(-1, 1)
    if kind == "logit":
        return output.gather(1, t)[:, 0]
    if kind == "prob":
        return output.softmax(1).gather(1, t)[:, 0]
    raise ValueError(f"unknown score kind {kind!r}; use 'prob' or 'logit'")


def repeat_target(target: Target, times: int) -> Target:
    """The target for a batch that repeats every image ``times`` times consecutively."""
    if isinstance(target, torch.Tensor):
        return target.repeat_interleave(times)
    return target


def tile_target(target: Target, times: int) -> Target:
    """The target for a batch made of ``times`` copies of the whole batch, one after another."""
    if isinstance(target, torch.Tensor):
        return target.repeat(times)
    return target


def model_device(model: torch.nn.Module, images: torch.Tensor) -> torch.device:
    """Where ``model`` runs; a model without parameters runs where ``images`` are."""
    from qbench.device import model_device as parameters_device

    return parameters_device(model, images.device)
