"""A grid of every corruption at every severity on one image (``qbench corrupt preview``)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from qbench.corrupt import apply, info, names
from qbench.corrupt.ops import to_uint8_array

LABEL_W = 190


def preview(image: torch.Tensor, path: str | Path, selected: list[str] | None = None,
            size: int = 128, seed: int = 0, device: str | torch.device = "cpu") -> Path:
    """Rows: corruptions; columns: clean, then severities. ``image`` is 3xHxW in [0, 1];
    the corruptions run on ``device``."""
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    x = F.interpolate(image[None], size=(max(8, round(h * scale)), max(8, round(w * scale))),
                      mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    x = x.to(device)
    th, tw = x.shape[-2:]
    rows = selected or names()
    levels = max(len(next(iter(info(n).tables.values()))) for n in rows)
    canvas = Image.new("RGB", (LABEL_W + (levels + 1) * (tw + 4), len(rows) * (th + 4) + 20),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for col, title in enumerate(["clean", *[f"severity {s}" for s in range(1, levels + 1)]]):
        draw.text((LABEL_W + col * (tw + 4) + 4, 4), title, fill="black")
    for r, name in enumerate(rows):
        top = 20 + r * (th + 4)
        c = info(name)
        draw.text((4, top + th // 2 - 10), f"{name}\n{c.family}{' (random)' if c.random else ''}",
                  fill="black")
        canvas.paste(Image.fromarray(to_uint8_array(x[0])), (LABEL_W, top))
        n_levels = len(next(iter(c.tables.values())))
        for s in range(1, n_levels + 1):
            y = apply(x, name, s, seed=seed)[0]
            canvas.paste(Image.fromarray(to_uint8_array(y)), (LABEL_W + s * (tw + 4), top))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
