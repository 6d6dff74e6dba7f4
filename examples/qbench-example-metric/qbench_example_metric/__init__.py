"""An example qbench metric plugin: mean gradient magnitude relative to local brightness.

It is deliberately simple -- the point is the shape of a plugin:

* a class (or instance, or factory) with an ``info`` of type :class:`qbench.metrics.MetricInfo`
  that declares kind, direction, minimum size and provenance;
* ``__call__(images, refs=None)`` taking Nx3xHxW float images in [0, 1] and returning N floats;
* an entry point in the ``qbench.metrics`` group (see pyproject.toml), or a ``module:attr``
  string given to ``qbench leaderboard add``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qbench.metrics import MetricInfo

__all__ = ["GradientEnergy"]


class GradientEnergy:
    """Full-reference: how much of the reference's gradient energy survives in the image
    (1 = all of it); blur removes gradients, noise adds spurious ones."""

    info = MetricInfo(
        name="example-gradient",
        version="0.1.0",
        kind="FR",
        higher_is_better=True,
        min_size=3,
        needs_weights=False,
        trained_on=(),
        description="gradient-magnitude similarity to the reference",
    )

    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        if refs is None:
            raise ValueError("example-gradient is full-reference: pass refs=")
        g_img, g_ref = _gradient(images), _gradient(refs)
        c = 1e-3
        sim = (2 * g_img * g_ref + c) / (g_img**2 + g_ref**2 + c)
        return sim.flatten(1).mean(dim=1).double()


def _gradient(x: torch.Tensor) -> torch.Tensor:
    luma = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1)
    gx = F.pad(luma[:, :, 1:] - luma[:, :, :-1], (0, 1))
    gy = F.pad(luma[:, 1:, :] - luma[:, :-1, :], (0, 0, 0, 1))
    return torch.sqrt(gx**2 + gy**2)
