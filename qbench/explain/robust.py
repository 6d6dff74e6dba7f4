"""Robust Perturbation (Kim, Kim, Kim & Ro, IEEE TIP 2022): a deletion mask that changes the
target class but not the others, cross-checked with the reversed mask.

The losses implemented, for one image (all terms are per image; the batch sums them):

* mask m ∈ [0, 1]^{H×W} at full resolution, starting from zeros; 1 = keep the pixel;
* reference x_r = ½ (Gaussian blur (σ 5, kernel 11) + median blur (11)), sizes at 224 px scaled
  with the image side; Gaussian noise ε ~ N(0, ``noise``²) is drawn anew at every step and added
  to both perturbed images (``noise`` = 0.045 in [0, 1] units = σ 0.2 in ImageNet-normalised
  units, our reading of the paper's "N(0, 0.2)", whose code works on normalised tensors);
* perturbed x̃ = x ⊙ m + x_r ⊙ (1 − m) + ε; reversed x̂ = x ⊙ (1 − m) + x_r ⊙ m + ε;
* p, p̃, p̂: class probabilities of x, x̃, x̂; ``_t`` = the target class, ``_nt`` = every other;
  D(a, b) = mean over the classes concerned of log2(|a − b| + 1);
* loss = − D(p_t, p̃_t)                      (deleting the region must change the target)
         + D(p_nt, p̃_nt)                    (... and must not distort the other classes)
         + 5 · mean|1 − m|                  (delete as little as possible)
         + D(p_t, p̂_t)                      (the region alone keeps the target: reversed mask)
         + mean_nt log2(|p̂_nt| + 1)         (... and does not evoke other classes)
         + 20 · TV_2(m)                     (TV_β as in Meaningful Perturbation, β = 2);
* Adam, lr 0.1, 150 iterations, m clamped to [0, 1] after each step; map = 1 − m.

Choices we had to make (the paper's code was not available): probabilities are the softmax of
the logits (``probabilities="softmax"``, single-label classifiers such as ``scenes``; the paper
works with multi-label sigmoid outputs, available as ``probabilities="sigmoid"``); with
softmax, lowering p_t necessarily raises some p_nt, so the second term trades off against the
first. For a scalar-output model (a callable target) p_t is the score itself and the two
non-target terms vanish. The noise is added to the blended images, not to the reference.
"""

from __future__ import annotations

import torch
from torch import nn

from qbench.explain.perturbation import (
    NOISE_01,
    _step,
    image_generators,
    image_noise,
    total_variation,
)
from qbench.explain.references import Target, model_device, substitute
from qbench.explain.registry import register


def class_probabilities(output: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "softmax":
        return output.softmax(1)
    if kind == "sigmoid":
        return output.sigmoid()
    raise ValueError(f"unknown probabilities {kind!r}; use 'softmax' or 'sigmoid'")


def _split(probs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(p_t: N, p_nt: N×(C−1)) for class targets."""
    onehot = torch.zeros_like(probs, dtype=torch.bool).scatter_(1, target[:, None], True)
    return probs[onehot], probs[~onehot].reshape(probs.shape[0], -1)


def _d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D(a, b) = mean log2(|a − b| + 1) over the last axis (or the value for 1-d input)."""
    v = torch.log2((a - b).abs() + 1)
    return v if v.ndim == 1 else v.mean(1)


@register("robust_perturbation", family="perturbation", needs_layer=False,
          differentiable=False,
          summary="Robust Perturbation: deletion mask that avoids class distortion, "
                  "cross-checked with its reverse")
def robust_perturbation(model: nn.Module, images: torch.Tensor, target: Target, layer=None,
                        iterations: int = 150, lr: float = 0.1, l1: float = 5.0,
                        tv: float = 20.0, tv_beta: float = 2.0, noise: float = NOISE_01,
                        probabilities: str = "softmax", seed: int = 0) -> torch.Tensor:
    """Robust Perturbation map (1 − mask, N×H×W in [0, 1]); see the module docstring."""
    device = model_device(model, images)
    x = images.to(device).detach()
    n, _, h, w = x.shape
    ref = substitute(x, "blur_median")
    classes = isinstance(target, torch.Tensor)
    with torch.no_grad():
        out0 = model(x)
        if classes:
            tgt = target.to(device)
            p_t, p_nt = _split(class_probabilities(out0, probabilities), tgt)
        else:
            p_t = target(out0).reshape(-1)
    gens = image_generators(n, seed)
    m = torch.zeros(n, 1, h, w, device=device, requires_grad=True)
    opt = torch.optim.Adam([m], lr=lr)
    with torch.enable_grad():
        for _ in range(iterations):
            eps = noise * image_noise(gens, x.shape[1:], draws=2).to(device)
            xt = x * m + ref * (1 - m) + eps[:n]
            xr = x * (1 - m) + ref * m + eps[n:]
            out = model(torch.cat([xt, xr]))
            reg = l1 * (1 - m).abs().flatten(1).mean(1) + tv * total_variation(m[:, 0], tv_beta)
            if classes:
                pt_t, pt_nt = _split(class_probabilities(out[:n], probabilities), tgt)
                pr_t, pr_nt = _split(class_probabilities(out[n:], probabilities), tgt)
                loss = (-_d(p_t, pt_t) + _d(p_nt, pt_nt) + _d(p_t, pr_t)
                        + torch.log2(pr_nt.abs() + 1).mean(1) + reg)
            else:
                s = target(out).reshape(-1)
                loss = -_d(p_t, s[:n]) + _d(p_t, s[n:]) + reg
            _step(opt, m, loss.sum())
    return (1 - m[:, 0]).detach().to(images.device)
