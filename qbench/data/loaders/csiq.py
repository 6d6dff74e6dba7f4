"""CSIQ: ``csiq.DMOS.xlsx`` (sheet with columns image, dst_idx, dst_type, dst_lev, dmos_std,
dmos; a CSV export ``csiq_dmos.csv`` with the same columns also works), ``src_imgs/1600.png``,
``dst_imgs/<type>/1600.AWGN.1.png``. DMOS 0-1, lower is better.

Checked as read (a DatasetFormatError naming the sheet file and row otherwise): every DMOS is
finite and inside [0, 1], no image is listed twice, the type is known and the level 1-5; a
distorted image is looked up in its type's folder ``dst_imgs/<type>/`` only and a reference in
``src_imgs/`` only, never in other sub-folders.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from qbench.data.base import LabelSpec
from qbench.data.loaders.common import (
    Unique,
    check_level,
    file_index,
    make_iqa_set,
    parse_float,
    resolve,
)
from qbench.errors import DatasetFormatError, DatasetNotFoundError

PUBLISHED = "https://s2.smu.edu/~eclarson/csiq.html (CSIQ database release)"
LABEL = LabelSpec("DMOS", 0.0, 1.0, higher_is_better=False)
COLUMNS = {"image", "dst_type", "dst_lev", "dmos"}
# dst_type in the score sheet -> token used in the file names
TOKENS = {"noise": "awgn", "awgn": "awgn", "jpeg": "jpeg", "jpeg 2000": "jpeg2000",
          "jpeg2000": "jpeg2000", "fnoise": "fnoise", "blur": "blur", "contrast": "contrast"}
LEVELS = (1, 5)
SCORE_FILES = ("csiq.DMOS.xlsx", "csiq_dmos.xlsx", "csiq_dmos.csv")


def _read_scores(root: Path) -> tuple[pd.DataFrame, Path]:
    for name in SCORE_FILES:
        path = root / name
        if not path.exists():
            continue
        try:
            if path.suffix == ".csv":
                return pd.read_csv(path), path
            sheets = pd.read_excel(path, sheet_name=None)
        except Exception as exc:  # pandas/openpyxl raise many types for a broken file
            raise DatasetFormatError("csiq", str(path), f"unreadable: {exc}") from None
        for frame in sheets.values():
            frame.columns = [str(c).strip().lower() for c in frame.columns]
            if set(frame.columns) >= COLUMNS:
                return frame, path
        raise DatasetFormatError("csiq", str(path), f"no sheet with columns {sorted(COLUMNS)}")
    raise DatasetNotFoundError("csiq", str(root / SCORE_FILES[0]), PUBLISHED)


def _level(value, where: str) -> int:
    try:
        level = float(value)
    except (TypeError, ValueError):
        raise DatasetFormatError("csiq", where, f"dst_lev {value!r} is not a number") from None
    if not math.isfinite(level) or level != int(level):
        raise DatasetFormatError("csiq", where, f"dst_lev {value!r} is not a whole number")
    return int(level)


def load_csiq(root: str | Path):
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError("csiq", str(root), PUBLISHED)
    frame, score_path = _read_scores(root)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if not set(frame.columns) >= COLUMNS:
        raise DatasetFormatError("csiq", str(score_path), f"needs columns {sorted(COLUMNS)}")
    dst, src = root / "dst_imgs", root / "src_imgs"
    for d in (dst, src):
        if not d.is_dir():
            raise DatasetFormatError("csiq", str(d), "folder missing")
    src_index = file_index(src)
    type_dirs = {d.name.lower(): d for d in sorted(dst.iterdir()) if d.is_dir()}
    dst_index: dict[str, dict] = {}
    paths, scores, refs, dists, levels, ref_paths = [], [], [], [], [], {}
    unique = Unique("csiq", "row")
    for n, row in enumerate(frame.itertuples(index=False), start=2):
        where = f"{score_path.name} row {n}"
        image = str(row.image).strip()
        if image.endswith(".0"):  # spreadsheets turn 1600 into 1600.0
            image = image[:-2]
        kind = str(row.dst_type).strip().lower()
        if kind not in TOKENS:
            raise DatasetFormatError("csiq", where, f"unknown dst_type {row.dst_type!r}")
        level = check_level(_level(row.dst_lev, where), *LEVELS, "csiq", where)
        token = TOKENS[kind]
        name = f"{image}.{token}.{level}.png"
        unique.check(name, where, n)
        score = parse_float(str(row.dmos), "csiq", where, (LABEL.low, LABEL.high))
        folder = type_dirs.get(token)
        if folder is None:
            raise DatasetFormatError("csiq", str(dst / token), "folder missing")
        if token not in dst_index:
            dst_index[token] = file_index(folder)
        paths.append(resolve(dst_index[token], name, "csiq", folder))
        scores.append(score)
        refs.append(image)
        ref_paths[image] = resolve(src_index, f"{image}.png", "csiq", src)
        dists.append(token)
        levels.append(level)
    return make_iqa_set("csiq", paths, scores, LABEL, refs, dists, levels, ref_paths, root)
