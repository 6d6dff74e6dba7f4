"""Controlled, deterministic image corruptions.

``qbench.corrupt(images, name, severity, seed=0, table="imagenet")`` returns the corrupted
batch (same shape, dtype and device); ``qbench.corrupt.names(family=None)`` lists names and
``qbench.corrupt.info(name)`` returns a corruption's metadata. A corrupted image is a pure
function of (image, name, severity, seed), whatever the batch around it.
"""

from __future__ import annotations

import sys
import types

import torch

from qbench.corrupt import imagenet_c, kadid, rankiqa_sets  # noqa: F401  (they register)
from qbench.corrupt.registry import REGISTRY, Corruption, get
from qbench.corrupt.registry import register as _register
from qbench.corrupt.seeding import generators

# Images are corrupted in chunks of this many: results do not depend on it (each image is a
# pure function of itself), and buffers of a chunk's size stay in the allocator's heap instead
# of being mapped and zeroed by the kernel on every call, which dominated CPU time at 64x224^2.
CHUNK = 16


def names(family: str | None = None, **filters) -> list[str]:
    """Registered corruption names; filters match metadata (``names("blur")``,
    ``names(source="kadid")``)."""
    if family is not None:
        filters["family"] = family
    return REGISTRY.names(**filters)


def info(name: str) -> Corruption:
    """A corruption's metadata: family, severity tables, randomness, source."""
    return get(name)


register = _register  # qbench.corrupt.register(Corruption(...)) adds one


def apply(images: torch.Tensor, name: str, severity: int | torch.Tensor, seed: int = 0,
          table: str | None = None) -> torch.Tensor:
    """Corrupt ``images`` (Nx3xHxW float in [0, 1]) with ``name`` at ``severity`` (int or N).

    ``table`` picks the severity table: "imagenet" (default) or "cifar" for ImageNet-C;
    corruptions with a single table (KADID-10k, RankIQA sets) use theirs.
    """
    from qbench.corrupt.ops import check_images, severities

    check_images(images)  # refused, never coerced: 0-255 values, NaN/inf, meta, integers
    c = get(name)
    table = table or next(iter(c.tables))
    n, _, h, w = images.shape
    sev = severities(severity, n)  # 2.5 or True refused, never truncated
    out = torch.empty_like(images)
    # values within RANGE_TOLERANCE outside [0, 1] (rounding) pass the check: clamp them so
    # ops never see a negative Poisson rate or return values above 1
    x = images.detach().to(torch.float32).clamp(0, 1)
    levels = torch.unique(sev).tolist()
    for s in levels:
        param = c.param(s, table, h, w)
        if len(levels) == 1:  # one severity: contiguous chunks, no gather/scatter copies
            parts = [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]
        else:
            parts = (sev == s).nonzero().flatten().to(images.device).split(CHUNK)
        for part in parts:
            batch = x[part]
            gens = generators(batch, name, s, seed) if c.random else []
            out[part] = c.op(batch, param, gens).to(images.dtype)
    return out


class _CallableModule(types.ModuleType):
    def __call__(self, images, name, severity, seed=0, table=None):
        return apply(images, name, severity, seed=seed, table=table)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["Corruption", "apply", "info", "names", "register"]
