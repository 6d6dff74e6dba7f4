"""``refs-crops``: square crops of the reference photographs, for real classifiers at 224 px.

The real presets run an ImageNet classifier on photographs qbench can ship: the ``refs``
photographs (scikit-image, scikit-learn, matplotlib and TID2013's references). Each photograph
gives ``per_photo`` square crops resized (Lanczos, antialiased) to ``size`` x ``size``: crop 0
is the largest centred square (what ``refs`` holds), the others are seeded random squares of
side 50-90 % of the shorter side. An item's content group is its photograph, so analyses
cluster by photograph and a train/test split never puts one photograph on both sides.

There are no ImageNet labels: ``labels`` is the photograph's index (``classes`` its key),
which no ImageNet model predicts. Use the model's own clean prediction as ground truth
(``--labels clean-prediction``). Splits: ``all``; ``train`` / ``test`` hold disjoint
photographs (``test``: 6 photographs chosen by a seeded permutation, seed 0).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from qbench.data import cache
from qbench.data.base import ClassificationSet
from qbench.data.photos import load_photos
from qbench.errors import QbenchError

GENERATOR_VERSION = 1
TEST_PHOTOS = 6
SPLITS = ("all", "train", "test")


def _crop_boxes(h: int, w: int, n: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(y, x, side) of the centred largest square, then ``n - 1`` seeded random squares."""
    s = min(h, w)
    boxes = [((h - s) // 2, (w - s) // 2, s)]
    for _ in range(n - 1):
        side = round(s * rng.uniform(0.5, 0.9))
        boxes.append((int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1)),
                      side))
    return boxes


def _build(size: int, per_photo: int, seed: int) -> dict[str, np.ndarray]:
    images, photo_index = [], []
    for k, photo in enumerate(load_photos()):
        rng = np.random.default_rng([seed, k])
        h, w = photo.array.shape[:2]
        for y, x, side in _crop_boxes(h, w, per_photo, rng):
            im = Image.fromarray(photo.array[y : y + side, x : x + side])
            images.append(np.asarray(im.resize((size, size), Image.Resampling.LANCZOS),
                                     dtype=np.uint8))
            photo_index.append(k)
    return {"images": np.stack(images), "photo": np.asarray(photo_index, np.int64)}


def test_photographs(n_photos: int) -> np.ndarray:
    """Indices of the held-out photographs of the ``test`` split (seeded, fixed)."""
    return np.sort(np.random.default_rng(0).permutation(n_photos)[:TEST_PHOTOS])


def load_refs_crops(split: str = "all", size: int = 224, per_photo: int = 4, seed: int = 0
                    ) -> ClassificationSet:
    """``per_photo`` crops of every reference photograph at ``size`` px (see the module doc)."""
    if split not in SPLITS:
        raise QbenchError(f"refs-crops has splits {', '.join(SPLITS)}, not {split!r}")
    if per_photo < 1 or size < 8:
        raise QbenchError(f"refs-crops needs per_photo >= 1 and size >= 8 (got {per_photo}, "
                          f"{size})")
    photos = load_photos()
    params = {"size": size, "per_photo": per_photo, "seed": seed,
              "photos": [p.sha256 for p in photos]}
    folder = cache.entry_dir("refs-crops", GENERATOR_VERSION, params)
    arrays = cache.load_entry(folder, "all", GENERATOR_VERSION)
    if arrays is None:
        arrays = _build(size, per_photo, seed)
        cache.save_entry(folder, "all", arrays, {"generator_version": GENERATOR_VERSION,
                                                  "config": {"size": size,
                                                             "per_photo": per_photo,
                                                             "seed": seed},
                                                  "photos": [p.key for p in photos]})
    photo = arrays["photo"]
    held_out = np.isin(photo, test_photographs(len(photos)))
    keep = {"all": np.ones(len(photo), bool), "train": ~held_out, "test": held_out}[split]
    idx = np.flatnonzero(keep)
    keys = [p.key for p in photos]
    ids = [f"{keys[photo[i]]}-c{i % per_photo}" for i in idx]
    return ClassificationSet(name="refs-crops", split=split, item_ids=ids,
                             array=arrays["images"][idx], labels=photo[idx].copy(),
                             classes=keys, groups=photo[idx].copy())
