"""The dataset protocol: indexable image sets with ids, labels and (for IQA) subjective scores.

Every dataset, embedded or real, is one of two shapes:

* :class:`ClassificationSet` -- images, integer labels, class names and optional object masks;
* :class:`IQASet` -- distorted images with a subjective score (MOS or DMOS), the id of their
  pristine reference, the distortion type and level, and a :class:`LabelSpec` that says which
  way the score points.

Images come out as float32 tensors in [0, 1], 3xHxW (``image``) or Nx3xHxW (``batch``), the
project-wide convention; decoding happens here, at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from qbench.data.imagefile import file_digest, read_image


@dataclass(frozen=True)
class LabelSpec:
    """What a dataset's subjective score means: kind, range and direction."""

    kind: str  # "MOS" or "DMOS"
    low: float
    high: float
    higher_is_better: bool

    def describe(self) -> str:
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        return f"{self.kind} in [{self.low:g}, {self.high:g}], {arrow}"


def uint8_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWx3 or NxHxWx3 uint8 array -> float32 tensor in [0, 1], channels first."""
    t = torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32).div_(255.0)
    return t.permute(2, 0, 1).contiguous() if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


@dataclass
class ImageSet:
    """A finite set of images, each with a stable string id.

    ``reader(i)`` returns image ``i`` as a 3xHxW float tensor; in-memory sets pass ``array``
    (NxHxWx3 uint8) instead, which also makes :meth:`batch` a single slice.

    File-backed sets also pass ``paths`` (the file of each item): :meth:`content` then
    identifies an item by its bytes, and the engine stores it with every result, so that a
    resumed run scores a replaced or repaired file again instead of reusing its old result.
    """

    name: str
    split: str
    item_ids: list[str]
    reader: Callable[[int], torch.Tensor] | None = None
    array: np.ndarray | None = field(default=None, repr=False)
    paths: list[Path] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.item_ids)

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as a 3xHxW float32 tensor in [0, 1]."""
        if self.array is not None:
            return uint8_to_tensor(self.array[i])
        assert self.reader is not None
        return self.reader(i)

    def batch(self, indices: Sequence[int]) -> torch.Tensor:
        """Images ``indices`` stacked as Nx3xHxW (they must share one size)."""
        if self.array is not None:
            return uint8_to_tensor(self.array[np.asarray(indices, dtype=np.int64)])
        return torch.stack([self.image(i) for i in indices])

    def content(self, i: int) -> str:
        """What item ``i``'s result depends on besides its id: a hash of its file's bytes
        (:func:`~qbench.data.imagefile.file_digest`) for a file-backed set, ``""`` for an
        in-memory one (its content is fixed by the dataset's own version)."""
        if self.paths is None:
            return ""
        return file_digest(self.paths[i])

    def subset(self, indices: Sequence[int]) -> ImageSet:
        """The same dataset restricted to ``indices`` (ids and labels follow the images)."""
        idx = [int(i) for i in indices]
        changes: dict = {"item_ids": [self.item_ids[i] for i in idx]}
        if self.paths is not None:
            changes["paths"] = [self.paths[i] for i in idx]
        if self.array is not None:
            changes["array"] = self.array[idx]
        else:
            reader = self.reader
            changes["reader"] = lambda k: reader(idx[k])
        changes.update(self._subset_fields(idx))
        return replace(self, **changes)

    def _subset_fields(self, idx: list[int]) -> dict:
        return {}

    @property
    def key(self) -> str:
        """The dataset key stored with every result row, e.g. ``scenes/test``."""
        return f"{self.name}/{self.split}"


@dataclass
class ClassificationSet(ImageSet):
    """Images with class labels; ``masks`` (NxHxW uint8, 255 = object) when known."""

    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    classes: list[str] = field(default_factory=list)
    masks: np.ndarray | None = field(default=None, repr=False)
    # id of each item's source photograph (content group), when known: lets analyses
    # stratify or cluster by content; ``scenes`` records its background photograph index
    groups: np.ndarray | None = field(default=None, repr=False)

    def _subset_fields(self, idx: list[int]) -> dict:
        return {"labels": self.labels[idx],
                "masks": None if self.masks is None else self.masks[idx],
                "groups": None if self.groups is None else self.groups[idx]}

    def mask(self, i: int) -> torch.Tensor:
        """Object mask ``i`` as an HxW float tensor in [0, 1]."""
        if self.masks is None:
            raise ValueError(f"{self.key} has no object masks")
        return torch.from_numpy(self.masks[i].astype(np.float32) / 255.0)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}


@dataclass
class IQASet(ImageSet):
    """Distorted images with subjective scores and the reference each was made from.

    ``ref_paths`` maps a reference id to its pristine image file (empty for authentic-distortion
    datasets such as KonIQ-10k, which have no references).
    """

    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    label: LabelSpec = field(default_factory=lambda: LabelSpec("MOS", 0, 1, True))
    ref_ids: list[str] = field(default_factory=list)
    distortions: list[str] = field(default_factory=list)
    levels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ref_paths: dict[str, Path] = field(default_factory=dict)

    def _subset_fields(self, idx: list[int]) -> dict:
        return {"scores": self.scores[idx], "ref_ids": [self.ref_ids[i] for i in idx],
                "distortions": [self.distortions[i] for i in idx], "levels": self.levels[idx]}

    def content(self, i: int) -> str:
        """The item's file hash and, where the set ships one, its reference's (a full-reference
        score depends on both)."""
        own = super().content(i)
        ref = self.ref_paths.get(self.ref_ids[i]) if self.ref_ids else None
        return f"{own}+{file_digest(ref)}" if own and ref is not None else own

    def reference(self, i: int) -> torch.Tensor:
        """The pristine reference of item ``i`` (full-reference metrics need it)."""
        ref = self.ref_ids[i]
        if ref not in self.ref_paths:
            raise ValueError(f"{self.key} has no reference image for item {self.item_ids[i]!r}")
        return read_image(self.ref_paths[ref])
