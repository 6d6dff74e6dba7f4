"""Fine-tuning targets: a real IQA dataset's MOS, or full-reference pseudo-labels on ``refs``.

Either way the result is a :class:`TargetSet`: images, a target oriented so that higher is
better and scaled to [0, 1], the reference each image comes from (for reference-disjoint
splits) and a plain statement of what the ground truth is. Pseudo-labels are what KADIS-700k /
DeepFL-IQA do without human scores: a full-reference metric scores each distorted image against
its pristine reference, and the no-reference model learns to predict that score.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

import qbench.corrupt as corrupt
from qbench.errors import QbenchError
from qbench.home import qbench_home
from qbench.rankiqa.ranked import split_references

REAL = ("kadid10k", "tid2013", "live")
DEFAULT_PSEUDO_METRIC = "pyiqa:fsim"


@dataclass
class TargetSet:
    images: list[torch.Tensor]  # uint8 3xHxW each
    target: np.ndarray  # float64, higher is better, in [0, 1]
    refs: list[str]
    distortions: list[str]
    levels: np.ndarray
    ground_truth: str  # what the target is, for reports
    source: str  # the name recorded as trained_on

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: Sequence[int]) -> TargetSet:
        idx = [int(i) for i in idx]
        return replace(self, images=[self.images[i] for i in idx], target=self.target[idx],
                       refs=[self.refs[i] for i in idx],
                       distortions=[self.distortions[i] for i in idx], levels=self.levels[idx])

    def float_images(self, idx: Sequence[int] | None = None) -> list[torch.Tensor]:
        idx = range(len(self)) if idx is None else idx
        return [self.images[i].float() / 255 for i in idx]


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def split_by_reference(ts: TargetSet, test_fraction: float = 0.2, seed: int = 0,
                       test_refs: Sequence[str] | None = None) -> tuple[TargetSet, TargetSet]:
    """(train, test) with no reference in both; ``test_refs`` fixes the test references."""
    names = sorted(set(ts.refs))
    if test_refs is None:
        _, test_idx = split_references(len(names), test_fraction, seed)
        test_refs = [names[i] for i in test_idx]
    held = set(test_refs)
    train = [i for i, r in enumerate(ts.refs) if r not in held]
    test = [i for i, r in enumerate(ts.refs) if r in held]
    if not train or not test:
        raise QbenchError(f"reference split left an empty side ({len(train)} train, "
                          f"{len(test)} test items)")
    return ts.subset(train), ts.subset(test)


def pseudo_labelled(references: torch.Tensor, keys: Sequence[str], names: Sequence[str],
                    levels: Sequence[int] = (1, 2, 3, 4, 5), metric: str = DEFAULT_PSEUDO_METRIC,
                    seed: int = 0, progress: bool = False, source: str = "refs",
                    device: str = "cpu") -> TargetSet:
    """``references`` x ``names`` x ``levels`` (+ each pristine image), labelled by the
    full-reference ``metric`` (run on ``device``) against the reference; labels cached under
    $QBENCH_HOME (per device: a GPU run's labels are its own)."""
    import qbench.metrics as metrics

    m = metrics.create(metric, device=device)
    if m.info.kind != "FR":
        raise QbenchError(f"pseudo-labels need a full-reference metric; {metric} is "
                          f"{m.info.kind}")
    # the references as they are stored (8-bit), so a pristine item equals its reference
    references = _to_uint8(references).float() / 255
    images, refs, dists, lv = [], [], [], []
    for name in names:
        for level in levels:
            y = corrupt.apply(references, name, level, seed=seed)
            images += list(_to_uint8(y))
            refs += list(keys)
            dists += [name] * len(keys)
            lv += [level] * len(keys)
    images += list(_to_uint8(references))
    refs += list(keys)
    dists += ["pristine"] * len(keys)
    lv += [0] * len(keys)
    raw = _cached_labels(images, refs, list(keys), references, metric, m, progress, device)
    # FR direction is metadata: orient once so that higher is better, then scale to [0, 1]
    # over the distorted images; the pristine ones (an image against itself: 1 for FSIM, a
    # huge or infinite PSNR) are clipped to the top, 1.
    oriented = raw if m.info.higher_is_better else -raw
    distorted = oriented[np.asarray(lv) > 0]
    lo, hi = float(distorted.min()), float(distorted.max())
    target = np.clip((oriented - lo) / (hi - lo), 0, 1) if hi > lo else np.ones_like(oriented)
    arrow = "higher" if m.info.higher_is_better else "lower (oriented)"
    return TargetSet(images, target, refs, dists, np.asarray(lv), source=source,
                     ground_truth=f"full-reference pseudo-labels ({metric}, {arrow} is better, "
                                  f"min-max scaled) on the {source} photographs under "
                                  f"{len(names)} KADID-10k distortion types; no human scores")


def _cached_labels(images, refs, keys, references, metric_name, metric, progress,
                   device: str = "cpu") -> np.ndarray:
    key = [metric_name, getattr(metric.info, "version", "")] + ([device] if device != "cpu"
                                                                 else [])
    h = hashlib.sha256(json.dumps(key).encode())
    for im in images:
        h.update(im.numpy().tobytes())
    path = qbench_home() / "rankiqa" / f"pseudo-{h.hexdigest()[:20]}.npy"
    if path.exists():
        return np.load(path)
    ref_of = {k: references[i] for i, k in enumerate(keys)}
    out = np.empty(len(images))
    steps = range(0, len(images), 16)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"pseudo-labels {metric_name}", unit="batch")
    for i in steps:
        x = torch.stack([im.float() / 255 for im in images[i : i + 16]])
        r = torch.stack([ref_of[k] for k in refs[i : i + 16]])
        out[i : i + 16] = torch.as_tensor(metric(x, r)).double().cpu().numpy()
    pristine = np.array(_pristine_flags(images, refs, ref_of))
    bad = ~np.isfinite(out)
    if (bad & ~pristine).any():
        raise QbenchError(f"{metric_name} returned non-finite pseudo-labels for "
                          f"{int((bad & ~pristine).sum())} distorted images")
    if bad.any():  # e.g. PSNR of an image with itself: the best value the set reaches
        out[bad] = out[~bad].max() if metric.info.higher_is_better else out[~bad].min()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def _pristine_flags(images, refs, ref_of) -> list[bool]:
    """True for an image identical to its reference (its FR score may be infinite)."""
    return [torch.equal(im, _to_uint8(ref_of[r])) for im, r in zip(images, refs, strict=True)]


def from_dataset(name: str, root: str | None = None, size: int | None = None,
                 max_items: int | None = None, seed: int = 0, progress: bool = False
                 ) -> TargetSet:
    """A real IQA release through qbench's loaders: MOS/DMOS oriented and scaled to [0, 1].

    ``size`` resizes each image so its shorter side is ``size`` (None keeps it);
    ``max_items`` keeps a random subset of whole references (same seed, same subset).
    """
    import qbench.data as data

    if name not in REAL:
        raise QbenchError(f"fine-tuning datasets are {', '.join(REAL)} (or 'refs'), not {name!r}")
    ds = data.load(name, root=root)
    idx = list(range(len(ds)))
    if max_items is not None and max_items < len(ds):
        names = sorted(set(ds.ref_ids))
        order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed))
        keep, count = set(), 0
        for k in order.tolist():
            keep.add(names[k])
            count = sum(r in keep for r in ds.ref_ids)
            if count >= max_items:
                break
        idx = [i for i in idx if ds.ref_ids[i] in keep]
    it = idx
    if progress:
        from tqdm import tqdm

        it = tqdm(idx, desc=f"reading {name}", unit="img")
    images = []
    for i in it:
        x = ds.image(i)
        if size is not None and min(x.shape[-2:]) != size:
            scale = size / min(x.shape[-2:])
            hw = (max(size, round(x.shape[-2] * scale)), max(size, round(x.shape[-1] * scale)))
            x = F.interpolate(x[None], size=hw, mode="bilinear", antialias=True,
                              align_corners=False)[0]
        images.append(_to_uint8(x))
    spec = ds.label
    raw = ds.scores[idx].astype(float)
    oriented = (raw - spec.low) / (spec.high - spec.low)
    target = oriented if spec.higher_is_better else 1 - oriented
    return TargetSet(images, target, [ds.ref_ids[i] for i in idx],
                     [ds.distortions[i] for i in idx], ds.levels[idx], source=name,
                     ground_truth=f"{name} {spec.describe()} (scaled to [0, 1], higher is "
                                  "better)")
