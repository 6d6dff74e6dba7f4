"""What a leaderboard column is scored on, and which ground truth it is judged against.

* ``refs-kadid`` (embedded): the ``refs`` photographs under the KADID-10k distortions at
  levels 1-5 plus the clean image. There are no human scores: the ground truth is the known
  level order within each (reference, distortion type); full-reference metrics compare with
  the clean image. Two of the 25 types are left out because their levels are not ordered by
  quality (:data:`LEVEL_ORDER_EXCLUDED`).
* ``kadid10k``, ``tid2013``, ``live``, ``csiq``, ``koniq10k`` (real releases through the
  loaders): ground truth is the dataset's MOS or DMOS, oriented so that higher = better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import qbench.corrupt as corrupt
import qbench.data as data
from qbench.data.base import ImageSet, IQASet
from qbench.engine import Condition, grid
from qbench.errors import QbenchError

REAL = ("kadid10k", "tid2013", "live", "csiq", "koniq10k")
EMBEDDED = "refs-kadid"
# KADID types whose level order is not a quality order, so it cannot serve as ground truth.
LEVEL_ORDER_EXCLUDED = {
    "kadid:mean_shift": "levels run from brighter (+0.15) through the identity to darker",
    "kadid:contrast_change": "levels 1-3 raise contrast, 4-5 lower it",
}


@dataclass
class TestSet:
    key: str
    dataset: ImageSet
    conditions: list[Condition]
    ground_truth: str  # "level order" or the dataset's "MOS ..." description
    items: pd.DataFrame = field(default_factory=pd.DataFrame)  # item, ref, distortion, level, target
    config: dict = field(default_factory=dict)


def refs_kadid(n_refs: int | None = None, size: int = 192, levels=(1, 2, 3, 4, 5),
               types: list[str] | None = None) -> TestSet:
    """The embedded set: references x KADID types x levels (and clean, level 0)."""
    refs = data.load("refs", size=size)
    if n_refs:
        refs = refs.subset(range(min(n_refs, len(refs))))
    names = types or [n for n in corrupt.names() if corrupt.info(n).source == "kadid"
                      and n not in LEVEL_ORDER_EXCLUDED]
    return TestSet(EMBEDDED, refs, grid(names, levels, clean=True),
                   "level order within each (reference, distortion type)",
                   config={"testset": EMBEDDED, "n_refs": len(refs), "size": size,
                           "levels": list(levels), "types": names})


def real(name: str, root: str | Path | None = None) -> TestSet:
    """A real IQA release; its scores become the ground truth (higher = better)."""
    ds = data.load(name, **({"root": root} if root else {}))
    if not isinstance(ds, IQASet):
        raise QbenchError(f"{name} is not an IQA dataset")
    sign = 1.0 if ds.label.higher_is_better else -1.0
    items = pd.DataFrame({"item": ds.item_ids, "ref": ds.ref_ids, "distortion": ds.distortions,
                          "level": ds.levels, "target": sign * np.asarray(ds.scores)})
    return TestSet(name, ds, grid([], clean=True), f"{ds.label.describe()} (oriented so that "
                   "higher = better)", items, {"testset": name, "root": str(root or "")})


def load(key: str, root: str | Path | None = None, **options) -> TestSet:
    if key == EMBEDDED:
        return refs_kadid(**options)
    if key in REAL:
        return real(key, root)
    raise QbenchError(f"unknown test set {key!r}; choose {EMBEDDED} or one of {', '.join(REAL)}")
