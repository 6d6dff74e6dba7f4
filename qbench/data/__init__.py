"""Datasets: the embedded ``scenes`` and ``refs`` and loaders for real releases.

``qbench.data.load(name, **options)`` is the one way to get any of them; ``names()`` lists
them and ``info(name)`` says what each is and where it is published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qbench.data.base import ClassificationSet, ImageSet, IQASet, LabelSpec
from qbench.home import datasets_root
from qbench.registry import Registry


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str  # "classification" or "iqa"
    embedded: bool
    description: str
    loader: Callable[..., ImageSet]
    default_folder: str = ""  # under the datasets root, for real datasets


def _scenes(split: str = "test", **kw) -> ClassificationSet:
    from qbench.data.scenes import load_scenes

    return load_scenes(split=split, **kw)


def _refs(size: int = 256, **_) -> ClassificationSet:
    from qbench.data.refs import load_refs

    return load_refs(size=size)


def _refs_crops(split: str = "all", **kw) -> ClassificationSet:
    from qbench.data.crops import load_refs_crops

    return load_refs_crops(split=split, **kw)


def _real(module: str, func: str, folder: str):
    def load(root: str | Path | None = None, **kw) -> ImageSet:
        import importlib

        fn = getattr(importlib.import_module(f"qbench.data.loaders.{module}"), func)
        return fn(Path(root) if root else datasets_root() / folder, **kw)

    return load


REGISTRY: Registry[Callable[..., ImageSet]] = Registry(
    "dataset", group="qbench.datasets",
    info_of=lambda fn: getattr(fn, "info", None))  # a plugin's loader may carry a DatasetInfo


def register(d: DatasetInfo) -> DatasetInfo:
    """Add a dataset: its loader under ``d.name``, with ``d`` as its metadata."""
    REGISTRY.register(d.name, d.loader, info=d)
    return d


for _d in [
    DatasetInfo("scenes", "classification", True,
                "10 textured shapes on natural backgrounds with object masks (generated)",
                _scenes),
    DatasetInfo("refs", "iqa", True,
                "pristine photographs shipped in installed packages (IQA references)",
                _refs),
    DatasetInfo("refs-crops", "classification", True,
                "square crops of the refs photographs (224 px; no ImageNet labels: use "
                "--labels clean-prediction; content group = photograph)", _refs_crops),
    DatasetInfo("cifar10", "classification", False, "CIFAR-10, python pickle batches",
                _real("cifar10", "load_cifar10", "cifar10"), "cifar10"),
    DatasetInfo("imagefolder", "classification", False,
                "ImageNet-style class folders <root>/[split/]<class>/<image>",
                _real("imagefolder", "load_imagefolder", "imagenet"), "imagenet"),
    DatasetInfo("kadid10k", "iqa", False, "KADID-10k, 81 refs x 25 types x 5 levels",
                _real("kadid", "load_kadid10k", "kadid10k"), "kadid10k"),
    DatasetInfo("tid2013", "iqa", False, "TID2013, 25 refs x 24 types x 5 levels",
                _real("tid2013", "load_tid2013", "tid2013"), "tid2013"),
    DatasetInfo("live", "iqa", False, "LIVE IQA release 2, 29 refs x 5 types",
                _real("live", "load_live", "live"), "live"),
    DatasetInfo("csiq", "iqa", False, "CSIQ, 30 refs x 6 types x 4-5 levels",
                _real("csiq", "load_csiq", "csiq"), "csiq"),
    DatasetInfo("koniq10k", "iqa", False, "KonIQ-10k, 10,073 authentic in-the-wild images",
                _real("koniq", "load_koniq10k", "koniq10k"), "koniq10k"),
]:
    register(_d)


def names(**filters) -> list[str]:
    """Every dataset qbench can load; filters match metadata (``names(kind="iqa")``)."""
    return REGISTRY.names(**filters)


def info(name: str) -> DatasetInfo:
    """What dataset ``name`` is and where it is published (nothing is read)."""
    return REGISTRY.info(name)


def load(name: str, **options) -> ImageSet:
    """Load dataset ``name``; real datasets take ``root=`` (default: the datasets root)."""
    return REGISTRY.get(name)(**options)


__all__ = ["ClassificationSet", "DatasetInfo", "IQASet", "ImageSet", "LabelSpec", "info",
           "load", "names", "register"]
