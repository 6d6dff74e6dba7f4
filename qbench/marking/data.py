"""Training data for marked models: ``scenes`` (classification) and a KADID-style IQA set.

The IQA set: every ``refs`` photograph at ``size`` px × 25 KADID-style distortion types × 5
levels (plus the pristine image), with a **full-reference pseudo-label** per image -- pyiqa
SSIM against the reference (1.0 for the pristine image). There is no human MOS: numbers on
this set are agreement with SSIM, and reports say so. Train/test split by reference (a seeded
permutation of the 20 photographs), so no photograph is in both. Cached under
``$QBENCH_HOME/marking/`` (building it takes about a minute on 2 cores).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch

from qbench.home import qbench_home

PSEUDO_LABEL = "pyiqa:ssim"
VERSION = 1


@dataclass
class TaskData:
    """Images (N×H×W×3 uint8), targets ``y`` (float scores or int labels) and per-image group
    ids (reference photograph / class), for one split of one task."""

    task: str  # "iqa" or "scenes"
    images: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    masks: np.ndarray | None = None  # object masks (scenes), N×H×W uint8
    label: str = ""

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx) -> torch.Tensor:
        from qbench.data.base import uint8_to_tensor

        return uint8_to_tensor(self.images[np.asarray(idx, dtype=np.int64)])

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for a in (self.images, self.y, self.groups):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    def take(self, n: int | None, seed: int = 0) -> TaskData:
        """A seeded subset of ``n`` items (all when ``n`` is None or ≥ len)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:n])
        return TaskData(self.task, self.images[idx], self.y[idx], self.groups[idx],
                        None if self.masks is None else self.masks[idx], self.label)


def _build_iqa(size: int) -> dict[str, np.ndarray]:
    import qbench
    from qbench.data.base import uint8_to_tensor

    refs = qbench.data.load("refs", size=size)
    x = uint8_to_tensor(refs.array)
    metric = qbench.metrics.create(PSEUDO_LABEL)
    types = [n for n in qbench.corrupt.names() if n.startswith("kadid:")]
    imgs, ys, groups, kinds, levels = [refs.array], [np.ones(len(x))], [np.arange(len(x))], \
        [np.full(len(x), -1)], [np.zeros(len(x), np.int64)]
    for t_i, name in enumerate(types):
        for level in range(1, 6):
            d = qbench.corrupt(x, name, level, seed=0)
            imgs.append((d.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
            ys.append(np.asarray(metric(d, refs=x), dtype=np.float64))
            groups.append(np.arange(len(x)))
            kinds.append(np.full(len(x), t_i))
            levels.append(np.full(len(x), level))
    return {"images": np.concatenate(imgs), "y": np.concatenate(ys).astype(np.float32),
            "groups": np.concatenate(groups), "types": np.concatenate(kinds),
            "levels": np.concatenate(levels), "type_names": np.array(types)}


def iqa_set(size: int = 64, split: str = "train", test_refs: int = 6, seed: int = 0
            ) -> TaskData:
    """The KADID-style pseudo-labelled set at ``size``, split by reference photograph."""
    folder = qbench_home() / "marking"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"iqa-kadid-ssim-{size}-v{VERSION}.npz"
    if not path.exists():
        arrays = _build_iqa(size)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    a = np.load(path)
    n_refs = int(a["groups"].max()) + 1
    test = set(np.random.default_rng(seed).permutation(n_refs)[:test_refs].tolist())
    in_test = np.isin(a["groups"], sorted(test))
    keep = in_test if split == "test" else ~in_test
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return TaskData("iqa", a["images"][keep], a["y"][keep], a["groups"][keep],
                    label=f"{PSEUDO_LABEL} pseudo-label (full-reference, not human MOS)")


def scenes_set(split: str = "train", size: int = 64) -> TaskData:
    """``scenes`` as TaskData (labels, object masks, class as group)."""
    import qbench

    s = qbench.data.load("scenes", split=split, size=size)
    return TaskData("scenes", s.array, np.asarray(s.labels, np.int64),
                    np.asarray(s.labels, np.int64), s.masks, label="class label")


def task_set(task: str, split: str, size: int | None = None) -> TaskData:
    if task == "iqa":
        return iqa_set(size or 64, split)
    if task == "scenes":
        return scenes_set(split, size or 64)
    raise ValueError(f"unknown task {task!r}; known: iqa, scenes")


def describe(data: TaskData) -> str:
    return json.dumps({"task": data.task, "n": len(data), "label": data.label,
                       "fingerprint": data.fingerprint()})
