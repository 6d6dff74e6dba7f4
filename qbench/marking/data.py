"""Training data for marked models: ``scenes`` (classification), a KADID-style IQA set, and
any classification dataset of ``qbench.data`` for a marked model of any base classifier.

The IQA set: every ``refs`` photograph at ``size`` px × 25 KADID-style distortion types × 5
levels (plus the pristine image), with a **full-reference pseudo-label** per image -- pyiqa
SSIM against the reference (1.0 for the pristine image). There is no human MOS: numbers on
this set are agreement with SSIM, and reports say so. Train/test split by reference (a seeded
permutation of the 20 photographs), so no photograph is in both. Cached under
``$QBENCH_HOME/marking/`` (building it takes about a minute on 2 cores).

Any classifier (``MarkingConfig(task="classify", dataset=..., init=<base spec>)``):
``marking_set(cfg, "train" | "test")`` loads ``cfg.dataset``'s ``cfg.split`` (marking) or
``cfg.test_split`` (measurement and audit) at ``cfg.size`` px (datasets that take no ``size``
are centre-cropped to a square and resized, Lanczos). ``cfg.labels``:

* ``"dataset"``: the dataset's labels (they must be the base's classes);
* ``"clean-prediction"``: no labels needed. The ground truth is the base's own clean top-1
  prediction, and ``TaskData.teacher`` holds its clean logits for each image and its mirror
  image, so the task loss keeps the model's outputs (distillation from the unmarked base) and
  task quality is *agreement* with the base's clean prediction, not accuracy.
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
    # labels "clean-prediction": the base's clean logits, N×2×C (the image, its mirror image);
    # ``y`` is then the base's top-1 class on the image itself
    teacher: np.ndarray | None = None

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
                        None if self.masks is None else self.masks[idx], self.label,
                        None if self.teacher is None else self.teacher[idx])

    def labels_for(self, idx, flipped: torch.Tensor | None = None) -> torch.Tensor:
        """The explained class of items ``idx`` (``flipped``: which are mirrored): the label,
        or with a teacher the base's clean top-1 class on the image as it is shown."""
        idx = np.asarray(idx, dtype=np.int64)
        y = torch.from_numpy(self.y[idx])
        if self.teacher is not None and flipped is not None and bool(flipped.any()):
            y_flip = torch.from_numpy(self.teacher[idx, 1].argmax(1))
            y = torch.where(flipped, y_flip.to(y.dtype), y)
        return y

    def teacher_for(self, idx, flipped: torch.Tensor | None = None) -> torch.Tensor | None:
        """The base's clean logits of items ``idx`` as shown (mirrored where ``flipped``)."""
        if self.teacher is None:
            return None
        t = torch.from_numpy(self.teacher[np.asarray(idx, dtype=np.int64)])
        if flipped is None:
            return t[:, 0]
        return torch.where(flipped[:, None], t[:, 1], t[:, 0])


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


LABELS = ("dataset", "clean-prediction")
SIZED = ("scenes", "refs-crops")  # loaders that take size= themselves
_SETS: dict = {}


def _square_uint8(data, size: int) -> np.ndarray:
    """Every image of ``data`` centre-cropped to a square and resized to ``size`` (Lanczos)."""
    from PIL import Image

    out = np.empty((len(data), size, size, 3), np.uint8)
    for i in range(len(data)):
        if data.array is not None:
            a = data.array[i]
        else:
            a = (data.image(i).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
            a = a.numpy()
        h, w = a.shape[:2]
        s = min(h, w)
        a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        if s != size:
            a = np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.LANCZOS))
        out[i] = a
    return out


def classifier_set(dataset: str, split: str, size: int, options: dict | None = None
                   ) -> TaskData:
    """Split ``split`` of classification dataset ``dataset`` at ``size`` px as TaskData
    (loaded once per process). ``options`` go to ``qbench.data.load`` (``root``,
    ``per_photo``, ...)."""
    import json

    import qbench

    opts = dict(options or {})
    key = (dataset, split, size, json.dumps(opts, sort_keys=True, default=str))
    if key in _SETS:
        return _SETS[key]
    kw = {"split": split, **opts}
    if dataset in SIZED:
        kw["size"] = size
    s = qbench.data.load(dataset, **kw)
    if not hasattr(s, "labels"):
        raise ValueError(f"{dataset} is not a classification dataset")
    images = s.array if (s.array is not None and s.array.shape[1:3] == (size, size)) \
        else _square_uint8(s, size)
    masks = s.masks
    if masks is not None and masks.shape[1:] != (size, size):
        masks = None  # masks follow the loader's own resizing only
    labels = np.asarray(s.labels, np.int64)
    groups = np.asarray(s.groups if s.groups is not None else labels, np.int64)
    out = TaskData("classify", images, labels, groups, masks, label=f"{dataset} class label")
    _SETS[key] = out
    return out


def clean_logits(model: torch.nn.Module, data: TaskData, mirror: bool = True,
                 batch_size: int = 32) -> np.ndarray:
    """The model's logits on every image (and its mirror image): N×(1 or 2)×C float32."""
    outs = []
    model.eval()
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            x = data.batch(range(s, min(s + batch_size, len(data))))
            views = [model(x)] + ([model(x.flip(-1))] if mirror else [])
            outs.append(torch.stack(views, 1).float())
    return torch.cat(outs).numpy()


def with_clean_predictions(data: TaskData, spec: str) -> TaskData:
    """``data`` with the base ``spec``'s clean logits as teacher and its top-1 prediction as
    ground truth (the dataset's labels are dropped)."""
    from qbench.marking.base import load_base

    key = ("clean", spec, data.fingerprint())
    if key not in _SETS:
        model, _ = load_base(spec)
        _SETS[key] = clean_logits(model, data)
    teacher = _SETS[key]
    return TaskData(data.task, data.images, teacher[:, 0].argmax(1).astype(np.int64),
                    data.groups, data.masks,
                    label=f"clean top-1 prediction of {spec} (agreement, not accuracy)",
                    teacher=teacher)


def marking_set(cfg, role: str) -> TaskData:
    """The data of MarkingConfig ``cfg`` for ``role`` "train" (marking; ``cfg.n_train`` seeded
    subset) or "test" (quality, marking success, audit)."""
    if role not in ("train", "test"):
        raise ValueError(f"role must be 'train' or 'test', not {role!r}")
    if cfg.task != "classify":
        data = task_set(cfg.task, role, cfg.size)
        return data.take(cfg.n_train, cfg.seed) if role == "train" else data
    opts = {**cfg.data_options, **(cfg.test_data_options if role == "test" else {})}
    data = classifier_set(cfg.dataset, cfg.split if role == "train" else cfg.test_split,
                          cfg.size, opts)
    if role == "train":
        data = data.take(cfg.n_train, cfg.seed)
    if cfg.labels == "clean-prediction":
        data = with_clean_predictions(data, cfg.init)
    return data


def describe(data: TaskData) -> str:
    return json.dumps({"task": data.task, "n": len(data), "label": data.label,
                       "fingerprint": data.fingerprint()})
