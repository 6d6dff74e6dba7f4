"""``refs``: the pristine photographs as an IQA reference set.

Each photograph's largest centred square is resized (Lanczos, antialiased) to ``size`` x
``size`` so references batch together; ``size`` defaults to 256, above the 161 px that
multi-scale metrics such as MS-SSIM need. There are no human scores: the ground truth of a
distorted set built from these references is the known level order.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from qbench.data import cache
from qbench.data.base import ClassificationSet
from qbench.data.photos import Photo, load_photos

GENERATOR_VERSION = 1


def _square(photo: Photo, size: int) -> np.ndarray:
    h, w = photo.array.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(photo.array[y : y + s, x : x + s])
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def load_refs(size: int = 256) -> ClassificationSet:
    """The reference photographs as an image set; ``classes`` name them (one per image)."""
    photos = load_photos()
    params = {"size": size, "photos": [p.sha256 for p in photos]}
    folder = cache.entry_dir("refs", GENERATOR_VERSION, params)
    arrays = cache.load_entry(folder, "all", GENERATOR_VERSION)
    if arrays is None:
        arrays = {"images": np.stack([_square(p, size) for p in photos])}
        cache.save_entry(folder, "all", arrays, {"generator_version": GENERATOR_VERSION,
                                                  "config": {"size": size},
                                                  "photos": [p.key for p in photos]})
    keys = [p.key for p in photos]
    return ClassificationSet(name="refs", split="all", item_ids=keys, array=arrays["images"],
                             labels=np.arange(len(keys), dtype=np.int64), classes=keys)
