"""CIFAR-10, python version: ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from qbench.data.base import ClassificationSet
from qbench.data.loaders.common import require_dir
from qbench.errors import DatasetFormatError

PUBLISHED = "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz)"
FOLDER = "cifar-10-batches-py"


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as exc:  # a damaged pickle raises many types (KeyError, IndexError...)
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DatasetFormatError("cifar10", str(path),
                                 f"cannot unpickle: {type(exc).__name__} {text}") from None
    if not isinstance(obj, dict):
        raise DatasetFormatError("cifar10", str(path), f"holds {type(obj).__name__}, not a dict")
    return obj


def load_cifar10(root: str | Path, split: str = "test") -> ClassificationSet:
    """``root`` is the folder holding ``cifar-10-batches-py`` (or that folder itself)."""
    root = Path(root).expanduser()
    if (root / FOLDER).is_dir():
        root = root / FOLDER
    root = require_dir("cifar10", root, PUBLISHED, "batches.meta")
    files = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    if split not in ("train", "test"):
        raise ValueError(f"cifar10 has splits train and test, not {split!r}")
    meta = _unpickle(root / "batches.meta")
    classes = [c.decode() if isinstance(c, bytes) else c for c in meta.get(b"label_names", [])]
    data, labels = [], []
    for name in files:
        path = root / name
        if not path.exists():
            raise DatasetFormatError("cifar10", str(path), "batch file missing")
        batch = _unpickle(path)
        if b"data" not in batch or b"labels" not in batch:
            raise DatasetFormatError("cifar10", str(path), "no b'data' / b'labels' keys")
        arr = np.asarray(batch[b"data"], dtype=np.uint8)
        if arr.ndim != 2 or arr.shape[1] != 3072:
            raise DatasetFormatError("cifar10", str(path), f"data has shape {arr.shape}, "
                                     "expected Nx3072")
        data.append(arr.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        if not isinstance(batch[b"labels"], list | tuple | np.ndarray):
            raise DatasetFormatError("cifar10", str(path), "labels are "
                                     f"{type(batch[b'labels']).__name__}, not a list")
        bad = [x for x in batch[b"labels"] if not (isinstance(x, int | np.integer)
                                                   and not isinstance(x, bool | np.bool_)
                                                   and 0 <= x < len(classes))]
        if bad:
            raise DatasetFormatError("cifar10", str(path), f"label {bad[0]!r} is not a class "
                                     f"index 0-{len(classes) - 1}")
        labels.extend(batch[b"labels"])
    images = np.concatenate(data)
    labels_arr = np.asarray(labels, dtype=np.int64)
    if len(labels_arr) != len(images):
        raise DatasetFormatError("cifar10", str(root), "labels and images differ in count")
    ids = [f"{split}-{i:05d}" for i in range(len(images))]
    return ClassificationSet(name="cifar10", split=split, item_ids=ids, array=images,
                             labels=labels_arr, classes=classes)
