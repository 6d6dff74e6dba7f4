"""ImageNet-style class folders: ``root/[split/]<class>/<image>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qbench.data.base import ClassificationSet
from qbench.data.imagefile import read_image
from qbench.errors import DatasetFormatError, DatasetNotFoundError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}


def load_imagefolder(root: str | Path, split: str = "val", name: str = "imagefolder"
                     ) -> ClassificationSet:
    """Classes are the sub-folder names in sorted order (torchvision's ImageFolder rule)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(name, str(root), "your own copy (ImageNet: image-net.org)",
                                   "expected <root>/[<split>/]<class>/<image>")
    base = root / split if (root / split).is_dir() else root
    classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    if not classes:
        raise DatasetFormatError(name, str(base), "no class sub-folders")
    paths, labels = [], []
    for k, c in enumerate(classes):
        for p in sorted((base / c).iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(p)
                labels.append(k)
    if not paths:
        raise DatasetFormatError(name, str(base), "class folders hold no images")
    ids = [str(p.relative_to(base)) for p in paths]
    return ClassificationSet(name=name, split=split, item_ids=ids,
                             reader=lambda i: read_image(paths[i]),
                             labels=np.asarray(labels, dtype=np.int64), classes=classes)
