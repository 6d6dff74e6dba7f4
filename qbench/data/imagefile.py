"""Decode image files into the project's tensor convention (3xHxW float32 RGB in [0, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from qbench.errors import ImageReadError


def read_image(path: str | Path) -> torch.Tensor:
    """Read ``path`` as RGB float32 3xHxW in [0, 1].

    Grayscale, palette and 16-bit images are converted to RGB; an alpha channel is dropped.
    A missing, empty, truncated or undecodable file raises :class:`ImageReadError` naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image file missing: {p}")
    if p.stat().st_size == 0:
        raise ImageReadError(f"image file is empty (0 bytes): {p}")
    try:
        with Image.open(p) as im:
            im.load()
            arr = _to_rgb_array(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot decode image {p}: {exc}") from exc
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Any PIL mode -> HxWx3 float32 in [0, 1]."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        scale = 65535.0 if a.max(initial=0) > 255 or im.mode.startswith("I;16") else 255.0
        g = np.clip(a / scale, 0, 1).astype(np.float32)
        return np.repeat(g[..., None], 3, axis=2)
    if im.mode == "F":
        g = np.clip(np.asarray(im, dtype=np.float32), 0, 1)
        return np.repeat(g[..., None], 3, axis=2)
    rgb = im.convert("RGB")
    return np.asarray(rgb, dtype=np.float32) / 255.0
