"""Decode image files into the project's tensor convention (3xHxW float32 RGB in [0, 1]).

Files that are not 8-bit RGB are adapted, and each adaptation is said out loud: inside
:func:`collect_notes` every conversion appends a note (the engine stores them per item in the
store's ``notes`` table), so a user can see that an item was, say, a palette image whose alpha
was dropped. Files whose intensity scale cannot be known (32-bit integer images, float images
outside [0, 1]) are refused with :class:`~qbench.errors.ImageReadError` rather than guessed.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from qbench.errors import ImageReadError

_notes: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("qbench_image_notes",
                                                                         default=None)


class ImageMissingError(ImageReadError):
    """The image file does not exist (possibly the whole folder is unavailable)."""


@contextlib.contextmanager
def collect_notes() -> Iterator[list[str]]:
    """Collect the conversion notes of every :func:`read_image` call inside the block."""
    found: list[str] = []
    token = _notes.set(found)
    try:
        yield found
    finally:
        _notes.reset(token)


def _note(text: str) -> None:
    found = _notes.get()
    if found is not None:
        found.append(text)


def read_image(path: str | Path) -> torch.Tensor:
    """Read ``path`` as RGB float32 3xHxW in [0, 1].

    Grayscale, palette, CMYK and 16-bit images are converted to RGB (16-bit at full precision)
    and an alpha channel is dropped, each with a note (see :func:`collect_notes`). A missing,
    empty, truncated or undecodable file, or one whose intensity scale is unknown, raises
    :class:`ImageReadError` naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageMissingError(f"image file missing: {p}")
    if p.stat().st_size == 0:
        raise ImageReadError(f"image file is empty (0 bytes): {p}")
    try:
        with Image.open(p) as im:
            im.load()
            if im.format == "PNG" and _png_bit_depth(p) == 16 and im.mode in ("RGB", "RGBA"):
                arr = _read_png16_colour(p)
            else:
                arr = _to_rgb_array(im, p)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot decode image {p}: {exc}") from exc
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _png_bit_depth(p: Path) -> int:
    with open(p, "rb") as f:
        head = f.read(25)
    return head[24] if len(head) == 25 and head[12:16] == b"IHDR" else 8


def _read_png16_colour(p: Path) -> np.ndarray:
    """A 16-bit RGB(A) PNG at full precision (Pillow would cut it to 8 bits)."""
    import cv2

    raw = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 3:
        raise ImageReadError(f"cannot decode 16-bit PNG {p}")
    if raw.shape[2] == 4:
        _note("alpha channel dropped")
    rgb = raw[..., 2::-1] if raw.shape[2] >= 3 else raw
    _note("16-bit RGB scaled by 1/65535")
    return (rgb.astype(np.float32) / 65535.0).clip(0, 1)


def _to_rgb_array(im: Image.Image, p: Path) -> np.ndarray:
    """Any PIL mode -> HxWx3 float32 in [0, 1]; notes what was adapted."""
    mode = im.mode
    if mode.startswith("I;16"):
        _note(f"16-bit grayscale ({mode}) scaled by 1/65535 and replicated to RGB")
        g = (np.asarray(im, dtype=np.float64) / 65535.0).clip(0, 1).astype(np.float32)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "I":
        raise ImageReadError(f"32-bit integer image {p}: its intensity scale is unknown "
                             "(save it as 8- or 16-bit)")
    if mode == "F":
        g = np.asarray(im, dtype=np.float32)
        lo, hi = float(np.nanmin(g)), float(np.nanmax(g))
        if not np.isfinite(g).all() or lo < 0 or hi > 1:
            raise ImageReadError(f"float image {p} has values in [{lo:.4g}, {hi:.4g}] (or "
                                 "non-finite ones); expected [0, 1]")
        _note("32-bit float grayscale replicated to RGB")
        return np.repeat(g[..., None], 3, axis=2)
    if mode != "RGB":
        if "A" in mode or (mode == "P" and "transparency" in im.info):
            _note("alpha channel dropped")
        what = {"L": "grayscale", "LA": "grayscale", "1": "1-bit", "P": "palette",
                "PA": "palette", "CMYK": "CMYK (no colour management)",
                "YCbCr": "YCbCr"}.get(mode, mode)
        if mode not in ("RGBA", "RGBa"):
            _note(f"{what} converted to RGB")
    rgb = im.convert("RGB")
    return np.asarray(rgb, dtype=np.float32) / 255.0
