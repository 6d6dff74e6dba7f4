"""The size policy of the classifier studies: shorter side to S, then the centred S x S crop.

``--size S`` (``size=S`` in a study's config) makes every image of a classification set
S x S, so folders of photographs of different sizes batch together:

1. the image is resized so that its **shorter side is S** (the aspect ratio kept; the longer
   side ``int(S * long / short)`` px, as torchvision computes it), with antialiased bilinear
   interpolation (``torch.nn.functional.interpolate(mode="bilinear", antialias=True,
   align_corners=False)``), then clamped to [0, 1];
2. the **centred S x S crop** is taken (offset ``round((long - S) / 2)``, as torchvision's
   ``center_crop``).

An image whose shorter side is already S is only cropped (no resampling), so a set that is
already S x S -- ``scenes`` at 64 px with ``size=64`` -- comes out unchanged, bit for bit.
Object masks follow the same geometry with nearest-neighbour interpolation, so they stay
binary and aligned with their image. On float tensors this is torchvision's
``Resize(S, antialias=True)`` + ``CenterCrop(S)`` evaluation transform (the tests compare
with it), the usual way ImageNet models are evaluated, without the 256 -> 224 margin: pass the
size the model takes.

Without a size, a study uses the images as they are, and they must share one size
(:func:`check_one_size`); otherwise it stops with one line saying to pass ``--size``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from qbench.data.base import ClassificationSet
from qbench.errors import QbenchError


def _target(h: int, w: int, size: int) -> tuple[int, int]:
    """(height, width) after resizing the shorter side to ``size``."""
    if h <= w:
        return size, max(size, int(size * w / h))
    return max(size, int(size * h / w)), size


def _crop_box(h: int, w: int, size: int) -> tuple[int, int]:
    """(top, left) of the centred crop, computed as torchvision's ``center_crop`` does."""
    return round((h - size) / 2.0), round((w - size) / 2.0)


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise QbenchError(f"size must be a positive number of pixels, not {size!r}")
    return int(size)


def resize_image(images: torch.Tensor, size: int) -> torch.Tensor:
    """``images`` (3xHxW or Nx3xHxW float in [0, 1]) with the shorter side resized to ``size``
    (antialiased bilinear) and centre-cropped to ``size`` x ``size``."""
    size = _check_size(size)
    single = images.ndim == 3
    x = images[None] if single else images
    h, w = x.shape[-2:]
    if min(h, w) != size:
        th, tw = _target(h, w, size)
        x = F.interpolate(x.float(), size=(th, tw), mode="bilinear", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0)
        h, w = th, tw
    top, left = _crop_box(h, w, size)
    x = x[..., top : top + size, left : left + size].contiguous()
    return x[0] if single else x


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """An HxW (or NxHxW) mask through the same geometry, nearest-neighbour (values kept)."""
    size = _check_size(size)
    m = np.asarray(mask)
    single = m.ndim == 2
    t = torch.from_numpy(np.ascontiguousarray(m[None] if single else m))
    h, w = t.shape[-2:]
    if min(h, w) != size:
        th, tw = _target(h, w, size)
        t = F.interpolate(t[:, None].float(), size=(th, tw), mode="nearest")[:, 0].to(t.dtype)
        h, w = th, tw
    top, left = _crop_box(h, w, size)
    out = t[..., top : top + size, left : left + size].contiguous().numpy()
    return out[0] if single else out


def resized(ds: ClassificationSet, size: int) -> ClassificationSet:
    """``ds`` with every image (and mask) through the policy above; images are resized when
    read, so nothing is decoded here. Ids, labels, groups and file paths (and so each item's
    content hash) are kept: the size is part of a run's configuration, not of an item."""
    size = _check_size(size)
    if ds.array is not None and tuple(ds.array.shape[1:3]) == (size, size):
        return ds  # already S x S: the policy changes nothing
    image = ds.image  # the original reader (in-memory or file)
    masks = None if ds.masks is None else resize_mask(ds.masks, size)
    return replace(ds, array=None, reader=lambda i: resize_image(image(i), size), masks=masks)


def image_size(ds: ClassificationSet, i: int) -> tuple[int, int] | None:
    """(height, width) of item ``i`` as it will be read, or None when it cannot be told.

    In-memory sets answer from their array; file-backed ones from the file's header (PIL, no
    decoding; an EXIF rotation by 90 degrees swaps the sides, as reading does). A file that
    cannot be opened answers None: the engine records it as a failed item later."""
    if ds.array is not None:
        return tuple(ds.array.shape[1:3])  # type: ignore[return-value]
    if ds.paths is None:
        try:
            return tuple(ds.image(i).shape[-2:])  # type: ignore[return-value]
        except Exception:
            return None
    from PIL import Image

    try:
        with Image.open(ds.paths[i]) as im:
            w, h = im.size
            try:
                turned = im.getexif().get(0x0112) in (5, 6, 7, 8)
            except Exception:
                turned = False
    except Exception:
        return None
    return (w, h) if turned else (h, w)


def check_one_size(ds: ClassificationSet) -> tuple[int, int] | None:
    """The one (height, width) of ``ds``'s images; a one-line error naming two of the sizes
    found, and ``--size``, when they differ. None when no image could be measured."""
    if ds.array is not None:
        return tuple(ds.array.shape[1:3])  # type: ignore[return-value]
    sizes = Counter(s for s in (image_size(ds, i) for i in range(len(ds))) if s is not None)
    if len(sizes) > 1:
        (a, na), (b, nb) = sizes.most_common(2)
        raise QbenchError(
            f"{ds.key}: the images have {len(sizes)} different sizes ({na} are {a[1]}x{a[0]}, "
            f"{nb} are {b[1]}x{b[0]}, ...); pass --size S to resize each image's shorter side "
            "to S and centre-crop S x S")
    return next(iter(sizes), None)
