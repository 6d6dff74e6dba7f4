"""Ranked training data: pristine references x distortion types x levels, made on the fly.

A :class:`RankedSet` holds, for each reference (source) and distortion type, the pristine image
(level index 0, the best) followed by the generator set's levels in order of increasing
distortion. Images are made by the corruption engine (``rankiqa-live:*``, ``rankiqa-tid:*``)
with an explicit seed, so the set is a pure function of (references, names, levels, seed).
References are split into train and test by reference, never by image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import qbench.corrupt as corrupt
from qbench.corrupt.rankiqa_sets import LIVE_NAMES, NOT_MONOTONE, TID_NAMES
from qbench.errors import QbenchError

SETS = {"live": LIVE_NAMES, "tid": tuple(n for n in TID_NAMES if n not in NOT_MONOTONE)}


@dataclass
class RankedSet:
    """``images``: uint8 R x T x L x 3 x H x W; level index 0 is the pristine reference."""

    images: torch.Tensor
    refs: list[str]
    types: list[str]
    levels: list[int]  # the engine severity behind each level index (0 = pristine)

    @property
    def shape(self) -> tuple[int, int, int]:
        r, t, n_levels = self.images.shape[:3]
        return r, t, n_levels

    def subset_refs(self, indices: Sequence[int]) -> RankedSet:
        idx = [int(i) for i in indices]
        return RankedSet(self.images[idx], [self.refs[i] for i in idx], self.types, self.levels)

    def subset_levels(self, level_indices: Sequence[int]) -> RankedSet:
        """Keep only these level indices (in the given, best-first order)."""
        idx = [int(i) for i in level_indices]
        return RankedSet(self.images[:, :, idx], self.refs, self.types,
                         [self.levels[i] for i in idx])


def generator_names(which: str) -> tuple[str, ...]:
    """The corruption names of a generator set: ``live`` (4 types) or ``tid`` (16 ordered)."""
    if which not in SETS:
        raise QbenchError(f"unknown RankIQA generator set {which!r}; known: {', '.join(SETS)}")
    return SETS[which]


def split_references(n: int, test_fraction: float = 0.2, seed: int = 0
                     ) -> tuple[list[int], list[int]]:
    """A reference-disjoint split of ``n`` references: (train indices, test indices)."""
    if n < 2:
        raise QbenchError(f"need at least 2 references to split, got {n}")
    g = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n, generator=g).tolist()
    n_test = min(n - 1, max(1, round(n * test_fraction)))
    return sorted(order[n_test:]), sorted(order[:n_test])


def build(references: torch.Tensor, keys: Sequence[str], names: Sequence[str],
          seed: int = 0) -> RankedSet:
    """Distort every reference (Nx3xHxW in [0, 1]) with every name at every level."""
    if references.ndim != 4 or references.shape[1] != 3:
        raise QbenchError(f"references must be Nx3xHxW, got {tuple(references.shape)}")
    counts = {len(next(iter(corrupt.info(n).tables.values()))) for n in names}
    if len(counts) != 1:
        raise QbenchError(f"generator types have different level counts: {sorted(counts)}")
    n_levels = counts.pop()
    pristine = (references.clamp(0, 1) * 255).round().to(torch.uint8)
    per_type = []
    for name in names:
        stack = [pristine]
        for level in range(1, n_levels + 1):
            y = corrupt.apply(references, name, level, seed=seed)
            stack.append((y.clamp(0, 1) * 255).round().to(torch.uint8))
        per_type.append(torch.stack(stack, 1))  # R x L x 3 x H x W
    images = torch.stack(per_type, 1).contiguous()
    return RankedSet(images, list(keys), list(names), list(range(n_levels + 1)))


def load_references(size: int = 160, folder: str | Path | None = None
                    ) -> tuple[torch.Tensor, list[str]]:
    """The pristine references: the embedded ``refs`` set, or every image in ``folder``.

    Folder images are cut to their centred square and resized (antialiased) to ``size``.
    """
    if folder is None:
        import qbench.data as data

        refs = data.load("refs", size=size)
        return refs.batch(range(len(refs))), list(refs.item_ids)
    from qbench.data.imagefile import read_image

    root = Path(folder).expanduser()
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in
                   {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}) \
        if root.is_dir() else []
    if len(files) < 2:
        raise QbenchError(f"pristine folder {root} has {len(files)} images; need at least 2 "
                          "(png/jpg/bmp/tif/webp)")
    out = []
    for f in files:
        x = read_image(f)
        s = min(x.shape[-2:])
        y0, x0 = (x.shape[-2] - s) // 2, (x.shape[-1] - s) // 2
        sq = x[:, y0 : y0 + s, x0 : x0 + s][None]
        out.append(F.interpolate(sq, size=(size, size), mode="bilinear", antialias=True,
                                 align_corners=False).clamp(0, 1)[0])
    return torch.stack(out), [f.stem for f in files]


def sample_batch(ranked: RankedSet, sources: int, crop: int, generator: torch.Generator
                 ) -> torch.Tensor:
    """A training batch laid out as S x T x L x 3 x crop x crop (float in [0, 1]).

    ``sources`` references are drawn without replacement; every (source, type) block is cut at
    one random position (and flipped or not) shared by all its levels, so a block's images
    differ only by the distortion level.
    """
    r, t, n_levels = ranked.shape
    h, w = ranked.images.shape[-2:]
    if crop > min(h, w):
        raise QbenchError(f"crop {crop} px exceeds the {h}x{w} references")
    if sources > r:
        raise QbenchError(f"{sources} sources per batch but only {r} references")
    chosen = torch.randperm(r, generator=generator)[:sources].tolist()
    ys = torch.randint(0, h - crop + 1, (sources, t), generator=generator)
    xs = torch.randint(0, w - crop + 1, (sources, t), generator=generator)
    flips = torch.rand((sources, t), generator=generator) < 0.5
    out = torch.empty((sources, t, n_levels, 3, crop, crop), dtype=torch.float32)
    for a, ref in enumerate(chosen):
        for b in range(t):
            y, x = int(ys[a, b]), int(xs[a, b])
            block = ranked.images[ref, b, :, :, y : y + crop, x : x + crop].float() / 255
            out[a, b] = block.flip(-1) if flips[a, b] else block
    return out


def level_subset(n_levels: int, keep: int) -> list[int]:
    """``keep`` level indices spread evenly from pristine (0) to the worst (n_levels - 1)."""
    if not 2 <= keep <= n_levels:
        raise QbenchError(f"can keep 2..{n_levels} levels, not {keep}")
    return sorted({int(v) for v in np.round(np.linspace(0, n_levels - 1, keep))})
