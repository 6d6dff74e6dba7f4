"""KonIQ-10k: ``koniq10k_scores_and_distributions.csv`` (image_name, c1..c5, c_total, MOS, SD,
MOS_zscore) and the images in ``1024x768/``. Authentic distortions, no references.
MOS 1-5, higher is better (the 0-100 ``MOS_zscore`` column is not read).

Checked as read (a DatasetFormatError naming the file and line otherwise): every MOS is finite
and inside [1, 5] and no image is listed twice; images are looked up in ``1024x768/`` itself,
never in a sub-folder.
"""

from __future__ import annotations

from pathlib import Path

from qbench.data.base import LabelSpec
from qbench.data.loaders.common import (
    Unique,
    csv_rows,
    file_index,
    make_iqa_set,
    parse_float,
    require_dir,
    resolve,
)
from qbench.errors import DatasetFormatError

PUBLISHED = "https://database.mmsp-kn.de/koniq-10k-database.html (koniq10k_1024x768.zip)"
LABEL = LabelSpec("MOS", 1.0, 5.0, higher_is_better=True)
SCORES = "koniq10k_scores_and_distributions.csv"


def load_koniq10k(root: str | Path):
    root = require_dir("koniq10k", Path(root).expanduser(), PUBLISHED, SCORES)
    folder = root / "1024x768"
    if not folder.is_dir():
        raise DatasetFormatError("koniq10k", str(folder), "image folder missing")
    index = file_index(folder)
    paths, scores = [], []
    unique = Unique("koniq10k")
    for n, row in csv_rows(root / SCORES, "koniq10k", {"image_name", "MOS"}):
        name, where = row["image_name"].strip(), f"{SCORES} line {n}"
        unique.check(name, where, n)
        paths.append(resolve(index, name, "koniq10k", folder))
        scores.append(parse_float(row["MOS"], "koniq10k", where, (LABEL.low, LABEL.high)))
    ids = [p.stem for p in paths]
    return make_iqa_set("koniq10k", paths, scores, LABEL, ids, ["authentic"] * len(paths),
                        [0] * len(paths), {}, root)
