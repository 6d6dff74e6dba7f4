"""Decode image files into the project's tensor convention (3xHxW float32 RGB in [0, 1]).

Files that are not 8-bit RGB are adapted, and each adaptation is said out loud: inside
:func:`collect_notes` every conversion appends a note (the engine stores them per item in the
store's ``notes`` table), so a user can see that an item was, say, a palette image whose alpha
was dropped. Files whose intensity scale cannot be known (32-bit integer images, float images
outside [0, 1]) are refused with :class:`~qbench.errors.ImageReadError` rather than guessed.

Two decoding choices are also made out loud: an EXIF orientation tag is applied (a phone photo
comes out upright, as a viewer shows it) and noted, and a file holding several frames (an
animated GIF, a multi-page TIFF) is read as its first frame, with a note saying how many there
were.

:func:`file_digest` identifies a file by its content; the engine stores it with every result so
that a replaced or repaired file is scored again when a run is resumed.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import xxhash
from PIL import Image, ImageOps, UnidentifiedImageError

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


def safe_name(text: str) -> str:
    """``text`` (a path as Python decoded it) as valid UTF-8: bytes of a file name that were not
    UTF-8 (kept by Python as lone surrogates) are shown escaped, ``caf\\xe9.png``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


_digests: dict[tuple, str] = {}
_digests_lock = threading.Lock()
MISSING = "missing"


def file_digest(path: str | Path) -> str:
    """A short hash of the bytes of ``path`` (xxh3-64, hex; ``"missing"`` if it cannot be read).

    Cached by (path, size, mtime, inode): a file is read again only when one of them changes."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return MISSING
    key = (str(p), st.st_size, st.st_mtime_ns, st.st_ino)
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    h = xxhash.xxh3_64()
    try:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return MISSING
    digest = h.hexdigest()
    with _digests_lock:
        if len(_digests) > 200_000:
            _digests.clear()
        _digests[key] = digest
    return digest


def read_image(path: str | Path) -> torch.Tensor:
    """Read ``path`` as RGB float32 3xHxW in [0, 1].

    Grayscale, palette, CMYK and 16-bit images are converted to RGB (16-bit at full precision)
    and an alpha channel is dropped, each with a note (see :func:`collect_notes`). An EXIF
    orientation is applied (``PIL.ImageOps.exif_transpose``) and noted; of a file with several
    frames (animated GIF, multi-page TIFF) the first frame is read and the count noted. A
    missing, empty, truncated or undecodable file, or one whose intensity scale is unknown,
    raises :class:`ImageReadError` naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageMissingError(f"image file missing: {p}")
    if p.stat().st_size == 0:
        raise ImageReadError(f"image file is empty (0 bytes): {p}")
    try:
        with Image.open(p) as im:
            im.load()
            frames = int(getattr(im, "n_frames", 1) or 1)
            if frames > 1:
                _note(f"{im.format} with {frames} frames: frame 1 of {frames} read")
            if im.format == "PNG" and _png_bit_depth(p) == 16 and im.mode in ("RGB", "RGBA"):
                arr = _read_png16_colour(p)
            else:
                arr = _to_rgb_array(_upright(im), p)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot decode image {p}: {exc}") from exc
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _upright(im: Image.Image) -> Image.Image:
    """``im`` turned as its EXIF orientation tag says (noted), else ``im`` itself."""
    try:
        orientation = im.getexif().get(0x0112)
    except Exception:  # a damaged EXIF block: Pillow raises many types; decode without it
        _note("EXIF block unreadable: orientation not applied")
        return im
    if orientation in (None, 1):
        return im
    turned = ImageOps.exif_transpose(im)
    _note(f"EXIF orientation {orientation} applied (image turned upright)")
    return turned if turned is not None else im


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
