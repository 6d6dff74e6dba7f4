"""``scenes``: a shape-classification dataset generated from a seed, with object masks.

Each image is one of ten shapes (:mod:`qbench.data.shapes`) filled with a texture cut from
one natural photograph and pasted over a background cut from another. The photographs come
from installed packages (:mod:`qbench.data.photos`). Every photograph is divided along its
longer side into three disjoint strips -- 60% train, 15% val, 25% test -- and a split only
ever crops inside its own strips, so no pixel region of a photograph is shared by two splits.

Image ``i`` of a split depends only on ``(seed, split, i, size)``: it has its own random
generator, so any subset can be regenerated alone and the arrays are byte-identical across
runs and machines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from qbench.data import cache
from qbench.data.base import ClassificationSet
from qbench.data.photos import Photo, load_photos
from qbench.data.shapes import CLASSES, SHAPES

GENERATOR_VERSION = 2  # 2: records each image's background photograph (groups)
SPLITS = ("train", "val", "test")
SPLIT_BOUNDS = {"train": (0.0, 0.60), "val": (0.60, 0.75), "test": (0.75, 1.0)}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
DEFAULT_COUNTS = {"train": 10_000, "val": 1_000, "test": 2_000}
SUPERSAMPLE = 4


@dataclass(frozen=True)
class ScenesConfig:
    """Everything that determines the generated arrays."""

    seed: int = 0
    size: int = 64
    n_train: int = DEFAULT_COUNTS["train"]
    n_val: int = DEFAULT_COUNTS["val"]
    n_test: int = DEFAULT_COUNTS["test"]

    def count(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]


def _strip(photo: np.ndarray, split: str) -> np.ndarray:
    """The split's strip of a photograph (cut along its longer side)."""
    h, w = photo.shape[:2]
    lo, hi = SPLIT_BOUNDS[split]
    if w >= h:
        return photo[:, round(lo * w) : round(hi * w)]
    return photo[round(lo * h) : round(hi * h), :]


def _crop(rng: np.random.Generator, strip: np.ndarray, size: int) -> np.ndarray:
    """A random square crop of side ~[0.75, 1.5] x size from ``strip``, resized to ``size``."""
    h, w = strip.shape[:2]
    side = int(min(h, w, max(8, round(size * rng.uniform(0.75, 1.5)))))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    patch = Image.fromarray(strip[y : y + side, x : x + side])
    if rng.random() < 0.5:
        patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(patch.resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)


def render_mask(shape: str, size: int, cx: float, cy: float, radius: float,
                angle: float, aspect: float) -> np.ndarray:
    """Anti-aliased uint8 mask (255 = object) of ``shape`` placed in a size x size image."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    for poly, fill in SHAPES[shape]:
        pts = poly * np.array([aspect, 1.0 / aspect]) @ rot.T * radius + np.array([cx, cy])
        draw.polygon([tuple(p) for p in (pts * SUPERSAMPLE)], fill=fill)
    return np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def make_scene(seed: int, split: str, index: int, size: int,
               photos: list[Photo]) -> tuple[np.ndarray, np.ndarray, int]:
    """Image ``index`` of ``split``: (HxWx3 uint8 image, HxW uint8 mask, label)."""
    image, mask, label, _ = make_scene_with_group(seed, split, index, size, photos)
    return image, mask, label


def make_scene_with_group(seed: int, split: str, index: int, size: int,
                          photos: list[Photo]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """:func:`make_scene` plus the index of the background photograph (the content group)."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index, size])
    label = int(rng.integers(len(CLASSES)))
    bg_i, tex_i = rng.choice(len(photos), size=2, replace=False)
    background = _crop(rng, _strip(photos[bg_i].array, split), size).astype(np.float32)
    # Four texture candidates; keep the one that stands out most from the background,
    # so the shape stays recognisable without drawing an outline.
    candidates = [_crop(rng, _strip(photos[tex_i].array, split), size) for _ in range(4)]
    contrast = [np.abs(t.astype(np.float32).mean((0, 1)) - background.mean((0, 1))).sum()
                for t in candidates]
    texture = candidates[int(np.argmax(contrast))].astype(np.float32)
    radius = size * rng.uniform(0.26, 0.40)
    margin = radius * 1.05
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    angle = np.deg2rad(rng.uniform(-25, 25))
    aspect = rng.uniform(0.9, 1.1)
    mask = render_mask(CLASSES[label], size, cx, cy, radius, angle, aspect)
    alpha = mask.astype(np.float32)[..., None] / 255.0
    image = np.rint(alpha * texture + (1 - alpha) * background).astype(np.uint8)
    return image, mask, label, int(bg_i)


def generate_split(cfg: ScenesConfig, split: str, photos: list[Photo]) -> dict[str, np.ndarray]:
    n, s = cfg.count(split), cfg.size
    images = np.empty((n, s, s, 3), np.uint8)
    masks = np.empty((n, s, s), np.uint8)
    labels = np.empty(n, np.int64)
    groups = np.empty(n, np.int64)
    for i in range(n):
        images[i], masks[i], labels[i], groups[i] = make_scene_with_group(
            cfg.seed, split, i, s, photos)
    return {"images": images, "masks": masks, "labels": labels, "groups": groups}


def _cache_params(cfg: ScenesConfig, photos: list[Photo]) -> dict:
    return {**cfg.__dict__, "photos": [p.sha256 for p in photos], "classes": CLASSES}


def load_scenes(split: str = "test", seed: int = 0, size: int = 64,
                n_train: int = DEFAULT_COUNTS["train"], n_val: int = DEFAULT_COUNTS["val"],
                n_test: int = DEFAULT_COUNTS["test"], progress: bool = False) -> ClassificationSet:
    """The ``scenes`` split, from the cache or generated (and cached) on first use."""
    if split not in SPLITS:
        raise ValueError(f"scenes has splits {SPLITS}, not {split!r}")
    cfg = ScenesConfig(seed, size, n_train, n_val, n_test)
    photos = load_photos()
    folder = cache.entry_dir("scenes", GENERATOR_VERSION, _cache_params(cfg, photos))
    arrays = cache.load_entry(folder, split, GENERATOR_VERSION)
    if arrays is None:
        if progress:
            print(f"generating scenes/{split}: {cfg.count(split)} images of {size}x{size} "
                  f"(seed {seed}) into {folder}", flush=True)
        arrays = generate_split(cfg, split, photos)
        meta = {"generator_version": GENERATOR_VERSION, "config": cfg.__dict__,
                "classes": CLASSES, "photos": [p.key for p in photos]}
        cache.save_entry(folder, split, arrays, meta)
    ids = [f"{split}-{i:06d}" for i in range(len(arrays["labels"]))]
    return ClassificationSet(name="scenes", split=split, item_ids=ids, array=arrays["images"],
                             labels=arrays["labels"], classes=list(CLASSES),
                             masks=arrays["masks"], groups=arrays["groups"])
