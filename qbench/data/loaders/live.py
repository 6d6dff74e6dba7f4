"""LIVE Image Quality Assessment Database, release 2.

Layout: ``dmos.mat`` (``dmos``, ``orgs``: 1x982), ``refnames_all.mat`` (``refnames_all``: 1x982
cell of reference file names), folders ``jp2k``, ``jpeg``, ``wn``, ``gblur``, ``fastfading``
holding ``img1.bmp ...`` (227, 233, 174, 174, 174 in the release, in that order in ``dmos``)
and ``refimgs/``. Entries with ``orgs == 1`` are the references themselves and are left out.
DMOS roughly 0-100, lower is better. LIVE has no discrete levels: ``levels`` are 0.

Checked as read (a DatasetFormatError naming ``dmos.mat`` and the entry otherwise): every DMOS
of a distorted image is finite and inside [-20, 130] -- lenient, as the release's values
overshoot the nominal 0-100 (realigned values dip below 0, the worst images exceed 100), but a
value far outside is a damaged or foreign file. Reference images are looked up in ``refimgs/``
itself, never in a sub-folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from qbench.data.base import LabelSpec
from qbench.data.loaders.common import (
    check_score,
    file_index,
    make_iqa_set,
    require_dir,
    resolve,
)
from qbench.errors import DatasetFormatError

PUBLISHED = "https://live.ece.utexas.edu/research/quality/subjective.htm (databaserelease2)"
LABEL = LabelSpec("DMOS", 0.0, 100.0, higher_is_better=False)
VALID = (-20.0, 130.0)  # lenient bounds on a DMOS (see the module docstring)
FOLDERS = ["jp2k", "jpeg", "wn", "gblur", "fastfading"]


def _mat(path: Path, key: str) -> np.ndarray:
    if not path.exists():
        raise DatasetFormatError("live", str(path), "file missing")
    try:
        data = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises many types (IndexError...) for a damaged file
        raise DatasetFormatError("live", str(path), f"not a readable .mat file: {exc}") from None
    if key not in data:
        raise DatasetFormatError("live", str(path), f"no variable {key!r}")
    return np.asarray(data[key]).ravel()


def _numbered(folder: Path) -> list[Path]:
    found = {}
    for p in folder.glob("*"):
        m = re.fullmatch(r"img(\d+)\.bmp", p.name, flags=re.IGNORECASE)
        if m:
            found[int(m.group(1))] = p
    n = len(found)
    if sorted(found) != list(range(1, n + 1)):
        raise DatasetFormatError("live", str(folder), "images are not numbered img1..imgN")
    return [found[k] for k in range(1, n + 1)]


def load_live(root: str | Path):
    root = require_dir("live", Path(root).expanduser(), PUBLISHED, "dmos.mat")
    dmos = _mat(root / "dmos.mat", "dmos").astype(np.float64)
    orgs = _mat(root / "dmos.mat", "orgs").astype(bool)
    refnames = [str(np.asarray(r).ravel()[0]) for r in
                _mat(root / "refnames_all.mat", "refnames_all")]
    if not (len(dmos) == len(orgs) == len(refnames)):
        raise DatasetFormatError("live", str(root), f"dmos ({len(dmos)}), orgs ({len(orgs)}) and "
                                 f"refnames_all ({len(refnames)}) differ in length")
    files, types = [], []
    for folder in FOLDERS:
        if not (root / folder).is_dir():
            raise DatasetFormatError("live", str(root / folder), "folder missing")
        numbered = _numbered(root / folder)
        files += numbered
        types += [folder] * len(numbered)
    if len(files) != len(dmos):
        raise DatasetFormatError("live", str(root), f"{len(files)} images in the type folders "
                                 f"but {len(dmos)} DMOS values")
    ref_index = file_index(root / "refimgs") if (root / "refimgs").is_dir() else {}
    keep = [i for i in range(len(dmos)) if not orgs[i]]
    for i in keep:
        check_score(float(dmos[i]), "live", f"dmos.mat entry {i + 1} ({types[i]}/"
                    f"{files[i].name})", VALID)
    ref_ids = [Path(refnames[i]).stem for i in keep]
    ref_paths = {Path(r).stem: resolve(ref_index, r, "live", root / "refimgs")
                 for r in {refnames[i] for i in keep}}
    return make_iqa_set("live", [files[i] for i in keep], [dmos[i] for i in keep], LABEL,
                        ref_ids, [types[i] for i in keep], [0] * len(keep), ref_paths, root)
