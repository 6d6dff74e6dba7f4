"""The dataset options every classifier study shares: dataset, root, split, size and labels.

A classifier study (``studies/quality_vs_accuracy.py``, ``studies/explainers.py``) takes

* ``dataset`` -- any registered classification dataset (``scenes``, ``cifar10``,
  ``imagefolder``, a plugin's loader); ``root`` -- its folder (real datasets; default: the
  datasets root); ``split`` -- default ``val`` for ImageNet-style folders, ``test`` otherwise;
* ``size`` -- the size policy of :mod:`qbench.data.resize` (shorter side to S, centred
  S x S crop); without it the images must already share one size;
* ``labels`` -- the ground truth a task scorer compares with: ``dataset`` (the dataset's
  labels, the default) or ``clean-prediction`` (the model's own top-1 prediction on the clean
  image: "correct" then means "agrees with its clean prediction", the flip-rate view of
  robustness, and needs no labels at all -- a folder of unlabelled photographs in one class
  folder will do).

:func:`check` validates the options in one line before any work; :func:`load` reads the set
and :func:`fit_size` applies the size policy to the chosen items.
"""

from __future__ import annotations

from qbench.data.base import ClassificationSet
from qbench.errors import QbenchError

LABELS = ("dataset", "clean-prediction")


def default_split(dataset: str) -> str:
    """``val`` for ImageNet-style folders (ImageNet's labelled split), else ``test``."""
    return "val" if dataset == "imagefolder" else "test"


def check(dataset: str, labels: str = "dataset", size: int | None = None) -> None:
    """One-line errors for an unknown or non-classification dataset, an unknown ``labels``
    and a size that is not a positive integer (nothing is read)."""
    import qbench.data as data
    from qbench.data.resize import _check_size

    meta = data.info(dataset)  # unknown: one line with a did-you-mean
    kind = getattr(meta, "kind", "classification")
    if kind != "classification":
        raise QbenchError(f"dataset {dataset!r} is of kind {kind!r}; a classifier study needs "
                          "a classification dataset: "
                          + ", ".join(data.names(kind="classification")))
    if labels not in LABELS:
        raise QbenchError(f"labels must be one of {', '.join(LABELS)}, not {labels!r}")
    if size is not None:
        _check_size(size)


def load(dataset: str, root: str | None = None, split: str | None = None,
         options: dict | None = None) -> ClassificationSet:
    """Classification set ``dataset`` (split default :func:`default_split`)."""
    import qbench.data as data

    kw = dict(options or {})
    if root is not None:
        kw["root"] = root
    ds = data.load(dataset, split=split or default_split(dataset), **kw)
    if not isinstance(ds, ClassificationSet):
        raise QbenchError(f"a classifier study needs a classification dataset; {dataset} is "
                          f"a {type(ds).__name__}")
    if len(ds) == 0:
        raise QbenchError(f"{ds.key} holds no images")
    return ds


def fit_size(ds: ClassificationSet, size: int | None) -> ClassificationSet:
    """``ds`` resized by the size policy (``size``), or ``ds`` itself after checking that its
    images share one size (one line saying to pass ``--size`` when they do not)."""
    from qbench.data.resize import check_one_size, resized

    if size is not None:
        return resized(ds, size)
    check_one_size(ds)
    return ds


def describe(dataset: str, split: str, labels: str, size: int | None,
             masks: bool | None = None) -> dict:
    """What a study's tables were measured against (for study.json and summaries)."""
    out = {"dataset": dataset, "split": split, "labels": labels,
           "ground_truth": ("the dataset's labels" if labels == "dataset" else
                            "each model's own top-1 prediction on the clean image"),
           "size": size,
           "size_policy": (f"shorter side to {size} px (antialiased bilinear), centred "
                           f"{size}x{size} crop" if size else "images as stored (one size)")}
    if masks is not None:
        out["masks"] = "available" if masks else "not available"
    return out
