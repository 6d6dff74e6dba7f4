"""Metrics qbench ships itself: classic no-reference measures that need no weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qbench.metrics.base import MetricInfo, check_inputs

_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_LUMA = torch.tensor([0.299, 0.587, 0.114])


class LaplacianSharpness:
    """Variance of the Laplacian of the luma (Pech-Pacheco et al. 2000): blur lowers it,
    noise raises it -- a classic focus measure, not a quality model."""

    info = MetricInfo("sharpness", "1", "NR", higher_is_better=True, min_size=3,
                      description="variance of the Laplacian of luma")

    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        luma = (images.float() * _LUMA.to(images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        lap = F.conv2d(luma, _LAPLACE.to(images.device).view(1, 1, 3, 3))
        return lap.flatten(1).var(dim=1).double().cpu()


class Colorfulness:
    """Hasler & Suesstrunk (2003) colourfulness: std and mean of the opponent channels."""

    info = MetricInfo("colorfulness", "1", "NR", higher_is_better=True,
                      description="Hasler-Suesstrunk colourfulness, 0-255 scale")

    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        r, g, b = (images.float() * 255).unbind(1)
        rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
        std = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
        mean = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
        return (std + 0.3 * mean).double().cpu()


def register_builtins(registry) -> None:
    """Register the built-in metrics: the two above, and the learned ones as lazy entries
    (their modules are imported, and their checkpoints' provenance read, only when used)."""
    registry.register("sharpness", LaplacianSharpness)
    registry.register("colorfulness", Colorfulness)
    for name, module, factory in (("rankiqa", "qbench.rankiqa.metric", "rankiqa"),
                                  ("rankiqa-ft", "qbench.rankiqa.metric", "rankiqa_ft"),
                                  ("proxy-confidence", "qbench.metrics.aligned",
                                   "proxy_confidence"),
                                  ("tg-iqa", "qbench.metrics.aligned", "tg_iqa")):
        registry.register(name, f"{module}:{factory}", info=f"{module}:{factory}_info")
