"""The scorer protocol: a callable that maps a batch of images to one number per image.

A metric declares what it is (:class:`MetricInfo`); the direction of its scores is metadata,
applied in analysis -- scores are never negated or abs()'ed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from qbench.errors import InvalidInputError, QbenchError

# How far outside [0, 1] an input value may lie (rounding of a resampled image) before a metric
# refuses it: a 0-255 or uint8 image is never scored on the wrong scale.
RANGE_TOLERANCE = 1e-3


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


def _check_values(info: MetricInfo, what: str, t: torch.Tensor) -> None:
    """A float tensor of finite values in [0, 1] (with rounding slack), or a one-line error."""
    if not isinstance(t, torch.Tensor):
        raise InvalidInputError(f"{info.name}: {what} must be a torch.Tensor, got "
                                f"{type(t).__name__}")
    if t.device.type == "meta":
        raise InvalidInputError(f"{info.name}: {what} are on the 'meta' device (no values)")
    if not t.is_floating_point():
        raise InvalidInputError(f"{info.name}: {what} must be float in [0, 1], got {t.dtype} "
                                "(convert with .float() / 255)")
    if t.numel() == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(t.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidInputError(f"{info.name}: {what} hold NaN or infinite values")
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = " (0-255 values? divide by 255)" if hi > 2 else ""
        raise InvalidInputError(f"{info.name}: {what} values lie in [{lo:.4g}, {hi:.4g}], "
                                f"outside [0, 1]{hint}")


def check_inputs(info: MetricInfo, images: torch.Tensor, refs: torch.Tensor | None) -> None:
    """Raise a clear one-line error for inputs this metric cannot score: not Nx3xHxW, no
    images, not float (uint8 is refused, not scored on the 0-255 scale), values outside [0, 1]
    or not finite, a missing or mismatched reference, smaller than the metric's minimum."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InvalidInputError(f"{info.name}: images must be Nx3xHxW, got {shape}")
    if images.shape[0] == 0:
        raise InvalidInputError(f"{info.name}: no images to score (a batch of 0 images)")
    _check_values(info, "images", images)
    if info.kind == "FR":
        if refs is None:
            raise InvalidInputError(f"{info.name} is full-reference: pass refs=")
        if not isinstance(refs, torch.Tensor) or refs.shape != images.shape:
            shape = tuple(refs.shape) if isinstance(refs, torch.Tensor) else type(refs).__name__
            raise InvalidInputError(f"{info.name}: refs shape {shape} differs from images "
                                    f"{tuple(images.shape)}")
        _check_values(info, "refs", refs)
    h, w = images.shape[-2:]
    if min(h, w) < info.min_size:
        raise InputTooSmallError(f"{info.name} needs inputs of at least {info.min_size} px; "
                                 f"got {h}x{w} (policy: skipped and recorded, not upscaled)")
