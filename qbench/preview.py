"""Preview grids of a dataset: a PNG of the first images with object masks outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from qbench.data.base import ClassificationSet, ImageSet


def _outline(mask: np.ndarray) -> np.ndarray:
    """Boolean edge pixels of a [0, 1] mask (object pixels with a background 4-neighbour)."""
    m = mask >= 0.5
    pad = np.pad(m, 1, mode="edge")
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    return m & ~inner


def preview_grid(ds: ImageSet, path: str | Path, n: int = 64, cell: int = 96,
                 columns: int = 8) -> Path:
    """Write the first ``n`` images of ``ds`` as a grid, masks outlined in yellow."""
    n = min(n, len(ds))
    rows = (n + columns - 1) // columns
    canvas = Image.new("RGB", (columns * cell, rows * cell), (255, 255, 255))
    for k in range(n):
        img = ds.image(k).permute(1, 2, 0).numpy()
        arr = (img * 255).round().astype(np.uint8)
        if isinstance(ds, ClassificationSet) and ds.masks is not None:
            arr[_outline(ds.mask(k).numpy())] = (255, 230, 0)
        tile = Image.fromarray(arr).resize((cell - 4, cell - 4), Image.Resampling.NEAREST)
        canvas.paste(tile, ((k % columns) * cell + 2, (k // columns) * cell + 2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
