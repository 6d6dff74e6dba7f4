"""Per-image random generators, seeded from the image's own bytes.

A corrupted image must be a pure function of (image, corruption, severity, seed). Seeding each
image's generator from a hash of its float32 pixels together with those three makes the noise
independent across images and identical whatever the batch size, order, company or device.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def image_seeds(images: torch.Tensor, name: str, severity: int, seed: int) -> list[int]:
    """The generator seed of every image (blake2b of its float32 bytes, keyed by the rest)."""
    from qbench.corrupt.ops import pmap

    key = f"{name}|{severity}|{seed}".encode()[:64]
    arrays = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())

    def one(a: np.ndarray) -> int:  # hashlib releases the GIL on large buffers
        digest = hashlib.blake2b(a.data, digest_size=8, key=key).digest()
        return int.from_bytes(digest, "little") & ((1 << 63) - 1)

    return pmap(one, arrays)


def generators(images: torch.Tensor, name: str, severity: int, seed: int) -> list[torch.Generator]:
    """One CPU generator per image (noise is drawn on CPU, then moved: same bytes on any device)."""
    return [torch.Generator().manual_seed(s) for s in image_seeds(images, name, severity, seed)]


def per_image(gens: list[torch.Generator], fn) -> torch.Tensor:
    """Stack ``fn(generator)`` over the batch, drawing in parallel threads (order preserved)."""
    from qbench.corrupt.ops import pmap

    return torch.stack(pmap(fn, gens))
