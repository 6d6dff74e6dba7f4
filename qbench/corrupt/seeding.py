"""Per-image random generators, seeded from the image's own bytes.

A corrupted image must be a pure function of (image, corruption, severity, seed). Seeding each
image's generator from a hash of its content together with those three makes the noise
independent across images and identical whatever the batch size, order or company.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def image_seed(image: torch.Tensor, name: str, severity: int, seed: int) -> int:
    data = np.ascontiguousarray(image.detach().to("cpu", torch.float32).numpy()).tobytes()
    h = hashlib.blake2b(data, digest_size=8, key=f"{name}|{severity}|{seed}".encode()[:64])
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def generators(images: torch.Tensor, name: str, severity: int, seed: int) -> list[torch.Generator]:
    """One CPU generator per image (noise is drawn on CPU, then moved: same bytes on any device)."""
    return [torch.Generator().manual_seed(image_seed(img, name, severity, seed)) for img in images]


def per_image(gens: list[torch.Generator], fn) -> torch.Tensor:
    """Stack ``fn(generator)`` over the batch."""
    return torch.stack([fn(g) for g in gens])
