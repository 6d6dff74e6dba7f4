"""Gradient methods: vanilla gradient, gradient × input, Integrated Gradients, SmoothGrad.

Each first computes signed attributions of the input (N×C×H×W, ``*_attributions``), the same
quantities captum returns (``Saliency(abs=False)``, ``InputXGradient``,
``IntegratedGradients``, ``NoiseTunnel(Saliency, "smoothgrad")``), then reduces them over the
colour channels to an N×H×W map with ``reduce``:

* ``"absmax"`` -- max_c |a_c| (Simonyan et al. 2014's saliency map; a magnitude, unsigned);
* ``"sum"``    -- Σ_c a_c (signed: positive = evidence for the target; for Integrated
  Gradients the map then sums to f(x) − f(baseline), its completeness property);
* ``"abssum"`` -- Σ_c |a_c|.

Defaults: ``absmax`` for ``gradient`` and ``smoothgrad`` (the gradient's sign says which way
to change a pixel, not whether it is evidence), ``sum`` for ``gradient_x_input`` and
``integrated_gradients``. No normalisation by default (``normalize="max"`` divides by the
largest |value|). The explained scalar y is the target logit (pre-softmax) or a callable's
value for scalar outputs such as an IQA score (positive = raises the score).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from qbench.errors import QbenchError
from qbench.explain.cam import normalize_maps
from qbench.explain.layers import TargetSpec, pin_target, target_scores
from qbench.explain.registry import register

REDUCE = ("absmax", "sum", "abssum")
IG_RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
            "riemann_trapezoid")


def reduce_channels(attributions: torch.Tensor, reduce: str) -> torch.Tensor:
    """N×C×H×W signed attributions → N×H×W map (see the module docstring)."""
    if reduce == "absmax":
        return attributions.abs().amax(1)
    if reduce == "sum":
        return attributions.sum(1)
    if reduce == "abssum":
        return attributions.abs().sum(1)
    raise QbenchError(f"reduce must be one of {REDUCE}, not {reduce!r}")


def _device(model: nn.Module, images: torch.Tensor) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else images.device


def _rows_target(target: TargetSpec, rows: torch.Tensor
                 ) -> torch.Tensor | Callable[[torch.Tensor], torch.Tensor]:
    """The target for a batch whose row r copies image ``rows[r]``."""
    if callable(target) and not isinstance(target, torch.Tensor):
        return target
    target = torch.as_tensor(target, dtype=torch.long).reshape(-1)
    if target.numel() == 1:
        return target.expand(len(rows))
    return target.to(rows.device)[rows]


def _input_gradients(model: nn.Module, inputs: torch.Tensor, target: TargetSpec,
                     rows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """∂y/∂x for every row of ``inputs`` (row r explains image ``rows[r]``), in batches."""
    grads = torch.empty_like(inputs)
    with torch.enable_grad():
        for start in range(0, inputs.shape[0], batch_size):
            chunk = inputs[start:start + batch_size].detach().requires_grad_(True)
            idx = rows[start:start + batch_size]
            scores = target_scores(model(chunk), _rows_target(target, idx))
            (grads[start:start + batch_size],) = torch.autograd.grad(scores.sum(), chunk)
    return grads


def gradient_attributions(model: nn.Module, images: torch.Tensor, target: TargetSpec,
                          batch_size: int = 64) -> torch.Tensor:
    """∂y/∂x, N×C×H×W (signed)."""
    images = images.to(_device(model, images))
    target = pin_target(model, images, target)
    rows = torch.arange(images.shape[0], device=images.device)
    return _input_gradients(model, images, target, rows, batch_size)


def gradient_x_input_attributions(model: nn.Module, images: torch.Tensor, target: TargetSpec,
                                  batch_size: int = 64) -> torch.Tensor:
    """x ⊙ ∂y/∂x, N×C×H×W (signed)."""
    images = images.to(_device(model, images))
    return images * gradient_attributions(model, images, target, batch_size)


def ig_rule(rule: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas, weights) of an integration rule on [0, 1] with ``steps`` points (captum's)."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (torch.as_tensor(0.5 * (1 + nodes), dtype=torch.float64),
                torch.as_tensor(0.5 * weights, dtype=torch.float64))
    if rule not in IG_RULES:
        raise QbenchError(f"rule must be one of {IG_RULES}, not {rule!r}")
    if steps < 2:
        raise QbenchError("Riemann rules need steps >= 2")
    weights = torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    kind = rule.split("_")[1]
    if kind == "trapezoid":
        weights[0] /= 2
        weights[-1] /= 2
        alphas = torch.linspace(0, 1, steps)
    elif kind == "left":
        alphas = torch.linspace(0, 1 - 1 / steps, steps)
    elif kind == "right":
        alphas = torch.linspace(1 / steps, 1, steps)
    else:
        alphas = torch.linspace(1 / (2 * steps), 1 - 1 / (2 * steps), steps)
    return alphas.double(), weights


def integrated_gradients_attributions(model: nn.Module, images: torch.Tensor,
                                      target: TargetSpec,
                                      baseline: float | torch.Tensor = 0.0, steps: int = 50,
                                      rule: str = "gausslegendre",
                                      batch_size: int = 64) -> torch.Tensor:
    """(x − x₀) ⊙ Σ_s w_s ∂y/∂x(x₀ + α_s (x − x₀)), N×C×H×W (Sundararajan et al. 2017).

    ``baseline`` x₀: a number (0 = black), or a tensor broadcastable to the images. ``rule``
    and ``steps`` choose the quadrature (captum's default: Gauss-Legendre, 50 points). The
    N·steps interpolated images are processed in batches of ``batch_size``.
    """
    images = images.to(_device(model, images))
    target = pin_target(model, images, target)
    base = torch.as_tensor(baseline, dtype=images.dtype, device=images.device)
    base = base.expand_as(images)
    alphas, weights = ig_rule(rule, steps)
    alphas = alphas.to(images.dtype).to(images.device)
    weights = weights.to(images.dtype).to(images.device)
    n = images.shape[0]
    delta = images - base
    # row r = (image r // steps, step r % steps): steps of one image are contiguous
    path = (base[:, None] + alphas.view(1, -1, 1, 1, 1) * delta[:, None]).flatten(0, 1)
    rows = torch.arange(n, device=images.device).repeat_interleave(steps)
    grads = _input_gradients(model, path, target, rows, batch_size)
    grads = grads.view(n, steps, *images.shape[1:])
    return delta * (weights.view(1, -1, 1, 1, 1) * grads).sum(1)


def smoothgrad_attributions(model: nn.Module, images: torch.Tensor, target: TargetSpec,
                            samples: int = 50, sigma: float = 0.15, seed: int = 0,
                            magnitude: bool = False, batch_size: int = 64) -> torch.Tensor:
    """mean_s ∂y/∂x(x + ε_s), ε_s ~ N(0, σ²), N×C×H×W (Smilkov et al. 2017).

    ``sigma`` is absolute in the [0, 1] pixel scale (the paper's "noise level" σ/(max − min)
    with a range of 1; 0.15 is inside its recommended 10–20 %). The noise is drawn from a CPU
    ``torch.Generator`` seeded with ``seed``, and every image gets the *same* ``samples``
    noise tensors, so an image's map does not depend on the batch it is in, nor on the device.
    ``magnitude=True`` averages |∂y/∂x| instead (captum's ``Saliency`` default inside
    ``NoiseTunnel``).
    """
    images = images.to(_device(model, images))
    target = pin_target(model, images, target)
    n = images.shape[0]
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((samples, *images.shape[1:]), generator=gen, dtype=images.dtype)
    noise = (noise * sigma).to(images.device)
    total = torch.zeros_like(images)
    rows_per_image = max(1, batch_size // max(1, n))
    for start in range(0, samples, rows_per_image):
        eps = noise[start:start + rows_per_image]
        s = eps.shape[0]
        noisy = (images[:, None] + eps[None]).flatten(0, 1)
        rows = torch.arange(n, device=images.device).repeat_interleave(s)
        grads = _input_gradients(model, noisy, target, rows, batch_size)
        grads = grads.view(n, s, *images.shape[1:])
        total += (grads.abs() if magnitude else grads).sum(1)
    return total / samples


def _map(attr: torch.Tensor, reduce: str, normalize: str | None) -> torch.Tensor:
    return normalize_maps(reduce_channels(attr, reduce), normalize).detach()


@register("gradient", "gradient", summary="Vanilla gradient: max_c |∂y/∂x_c| (Simonyan 2014)")
def gradient(model: nn.Module, images: torch.Tensor, target: TargetSpec, layer=None,
             reduce: str = "absmax", normalize: str | None = None,
             batch_size: int = 64) -> torch.Tensor:
    """Vanilla gradient map (``layer`` is ignored)."""
    return _map(gradient_attributions(model, images, target, batch_size), reduce, normalize)


@register("gradient_x_input", "gradient", summary="Gradient × input: Σ_c x_c ∂y/∂x_c (signed)")
def gradient_x_input(model: nn.Module, images: torch.Tensor, target: TargetSpec, layer=None,
                     reduce: str = "sum", normalize: str | None = None,
                     batch_size: int = 64) -> torch.Tensor:
    """Gradient × input map (``layer`` is ignored)."""
    attr = gradient_x_input_attributions(model, images, target, batch_size)
    return _map(attr, reduce, normalize)


@register("integrated_gradients", "gradient",
          summary="Integrated Gradients from a baseline (default black), Σ_c (signed)")
def integrated_gradients(model: nn.Module, images: torch.Tensor, target: TargetSpec,
                         layer=None, baseline: float | torch.Tensor = 0.0, steps: int = 50,
                         rule: str = "gausslegendre", reduce: str = "sum",
                         normalize: str | None = None, batch_size: int = 64) -> torch.Tensor:
    """Integrated Gradients map (``layer`` is ignored)."""
    attr = integrated_gradients_attributions(model, images, target, baseline, steps, rule,
                                             batch_size)
    return _map(attr, reduce, normalize)


@register("smoothgrad", "gradient",
          summary="SmoothGrad: gradient averaged over noisy copies, max_c |.| (seeded)")
def smoothgrad(model: nn.Module, images: torch.Tensor, target: TargetSpec, layer=None,
               samples: int = 50, sigma: float = 0.15, seed: int = 0, magnitude: bool = False,
               reduce: str = "absmax", normalize: str | None = None,
               batch_size: int = 64) -> torch.Tensor:
    """SmoothGrad map (``layer`` is ignored)."""
    attr = smoothgrad_attributions(model, images, target, samples, sigma, seed, magnitude,
                                   batch_size)
    return _map(attr, reduce, normalize)
