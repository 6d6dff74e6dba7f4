"""ImageNet-style class folders: ``root/[split/]<class>/<image>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qbench.data.base import ClassificationSet
from qbench.data.imagefile import read_image, safe_name
from qbench.errors import DatasetFormatError, DatasetNotFoundError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp", ".gif"}


def _hidden(p: Path) -> bool:
    return p.name.startswith(".")


def load_imagefolder(root: str | Path, split: str = "val", name: str = "imagefolder"
                     ) -> ClassificationSet:
    """Classes are the sub-folder names in sorted order (torchvision's ImageFolder rule).

    Unlike torchvision, hidden entries -- names starting with ``.``, such as
    ``.ipynb_checkpoints`` or macOS ``._photo.jpg`` files -- are skipped, both as class folders
    and as images: a hidden folder taken as class 0 would shift every label by one. Files beside
    the class folders (a README) are not classes either. Images are the files with a suffix in
    :data:`IMAGE_SUFFIXES`; a GIF is read as its first frame, with a note (see
    :func:`qbench.data.imagefile.read_image`). An item id is the path under the split folder;
    a file name that is not valid UTF-8 appears in it with its odd bytes escaped (``caf\\xe9.png``).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(name, str(root), "your own copy (ImageNet: image-net.org)",
                                   "expected <root>/[<split>/]<class>/<image>")
    base = root / split if (root / split).is_dir() else root
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not _hidden(d))
    if not classes:
        raise DatasetFormatError(name, str(base), "no class sub-folders")
    paths, labels = [], []
    for k, c in enumerate(classes):
        for p in sorted((base / c).iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p) and not p.is_dir():
                paths.append(p)
                labels.append(k)
    if not paths:
        raise DatasetFormatError(name, str(base), "class folders hold no images")
    ids = [safe_name(p.relative_to(base).as_posix()) for p in paths]
    return ClassificationSet(name=name, split=split, item_ids=ids,
                             reader=lambda i: read_image(paths[i]),
                             labels=np.asarray(labels, dtype=np.int64),
                             classes=[safe_name(c) for c in classes], paths=paths)
