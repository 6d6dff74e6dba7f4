"""The scorer protocol: a callable that maps a batch of images to one number per image.

A metric declares what it is (:class:`MetricInfo`); the direction of its scores is metadata,
applied in analysis -- scores are never negated or abs()'ed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from qbench.errors import QbenchError


@dataclass(frozen=True)
class MetricInfo:
    name: str
    version: str
    kind: str  # "FR", "NR" or "task"
    higher_is_better: bool
    min_size: int = 1  # smallest height/width the metric accepts
    needs_weights: bool = False
    trained_on: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""
    # what the scoring engine reads (declared here, never probed with getattr):
    batch_size: int | None = None  # images per call; None = the whole batch
    thread_safe: bool = False  # calls keep no state: may run beside others in threads
    cost: float = 1.0  # relative cost per image: only the order metrics start in uses it
    needs_labels: bool = False  # called as m(images, refs, labels=...) (task scorers)


class InputTooSmallError(QbenchError):
    """The images are smaller than the metric's minimum input size (recorded, then skipped)."""


@runtime_checkable
class Metric(Protocol):
    info: MetricInfo

    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        """Nx3xHxW images in [0, 1] (and Nx3xHxW references for FR) -> N float scores."""
        ...


def check_inputs(info: MetricInfo, images: torch.Tensor, refs: torch.Tensor | None) -> None:
    """Raise a clear error for inputs this metric cannot score."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{info.name}: images must be Nx3xHxW, got {tuple(images.shape)}")
    if info.kind == "FR":
        if refs is None:
            raise ValueError(f"{info.name} is full-reference: pass refs=")
        if refs.shape != images.shape:
            raise ValueError(f"{info.name}: refs shape {tuple(refs.shape)} differs from images "
                             f"{tuple(images.shape)}")
    h, w = images.shape[-2:]
    if min(h, w) < info.min_size:
        raise InputTooSmallError(f"{info.name} needs inputs of at least {info.min_size} px; "
                                 f"got {h}x{w} (policy: skipped and recorded, not upscaled)")
