"""Small metrics for engine tests: deterministic, cheap, and instrumented."""

from __future__ import annotations

import os
import time

import torch

from qbench.metrics.base import MetricInfo, check_inputs


class MeanBrightness:
    """NR toy metric: mean intensity. Appends the number of images it scored to $TOY_LOG."""

    info = MetricInfo("toy:mean", "1", "NR", higher_is_better=True)

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def __call__(self, images, refs=None):
        check_inputs(self.info, images, refs)
        if os.environ.get("TOY_LOG"):
            with open(os.environ["TOY_LOG"], "a") as f:
                f.write(f"{images.shape[0]}\n")
        time.sleep(self.delay)
        return images.mean(dim=(1, 2, 3)).double()


class MeanAbsError:
    """FR toy metric: mean absolute difference to the reference (lower is better)."""

    info = MetricInfo("toy:mae", "1", "FR", higher_is_better=False)

    def __call__(self, images, refs=None):
        check_inputs(self.info, images, refs)
        return (images - refs).abs().mean(dim=(1, 2, 3)).double()


class FailsOnDarkImages:
    """Raises for any batch holding an image darker than 0.3, NaN for the brightest."""

    info = MetricInfo("toy:fragile", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        m = images.mean(dim=(1, 2, 3)).double()
        if (m < 0.3).any():
            raise RuntimeError("too dark")
        return torch.where(m > 0.6, torch.full_like(m, float("nan")), m)


class NeedsBigInputs:
    info = MetricInfo("toy:big", "1", "NR", higher_is_better=True, min_size=161)

    def __call__(self, images, refs=None):
        check_inputs(self.info, images, refs)
        return images.mean(dim=(1, 2, 3)).double()
