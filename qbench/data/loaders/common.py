"""Helpers shared by the real-dataset loaders: locating roots and resolving file names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qbench.data.base import IQASet, LabelSpec
from qbench.data.imagefile import read_image
from qbench.errors import DatasetFormatError, DatasetNotFoundError


def require_dir(name: str, root: Path, published: str, must_have: str) -> Path:
    """``root`` if it holds ``must_have``; otherwise a one-line DatasetNotFoundError."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetNotFoundError(name, str(root), published, f"expected {must_have} inside")
    if not (root / must_have).exists():
        raise DatasetNotFoundError(name, str(root / must_have), published,
                                   "the folder exists but this file is missing")
    return root


def file_index(folder: Path) -> dict[str, Path]:
    """Files under ``folder`` (recursive) by lower-cased name: releases mix case (I01.BMP)."""
    return {p.name.lower(): p for p in folder.rglob("*") if p.is_file()}


def resolve(index: dict[str, Path], name: str, dataset: str, folder: Path) -> Path:
    p = index.get(name.lower())
    if p is None:
        raise DatasetFormatError(dataset, str(folder), f"listed image {name!r} is not there")
    return p


def read_text(path: Path, dataset: str) -> str:
    """The text of ``path`` (UTF-8, optional BOM); a DatasetFormatError if it is not text."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(dataset, str(path), f"not UTF-8 text ({exc.reason} at byte "
                                 f"{exc.start})") from None


def csv_rows(path: Path, dataset: str, required: set[str]) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a CSV file with a header; every row must have every ``required``
    column (a truncated file or a short line is a DatasetFormatError naming the line)."""
    reader = csv.DictReader(io.StringIO(read_text(path, dataset), newline=""))
    try:
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise DatasetFormatError(dataset, str(path), f"missing columns {sorted(missing)}")
        for row in reader:
            n = reader.line_num
            short = sorted(c for c in required if row.get(c) is None)
            if short:
                raise DatasetFormatError(dataset, f"{Path(path).name} line {n}",
                                         f"no value for {short} (truncated line?)")
            yield n, row
    except csv.Error as exc:
        raise DatasetFormatError(dataset, f"{Path(path).name} line {reader.line_num}",
                                 f"not valid CSV: {exc}") from None


def parse_float(text: str | None, dataset: str, where: str) -> float:
    if text is None:
        raise DatasetFormatError(dataset, where, "value missing")
    try:
        value = float(text)
    except ValueError:
        raise DatasetFormatError(dataset, where, f"not a number: {text!r}") from None
    if value != value:  # NaN
        raise DatasetFormatError(dataset, where, "score is NaN")
    return value


def make_iqa_set(name: str, paths: list[Path], scores: list[float], label: LabelSpec,
                 ref_ids: list[str], distortions: list[str], levels: list[int],
                 ref_paths: dict[str, Path], root: Path) -> IQASet:
    """Build an :class:`~qbench.data.base.IQASet` whose item ids are paths under ``root``."""
    if not paths:
        raise DatasetFormatError(name, str(root), "the score file lists no images")
    ids = [p.relative_to(root).as_posix() for p in paths]
    return IQASet(name=name, split="all", item_ids=ids, reader=lambda i: read_image(paths[i]),
                  scores=np.asarray(scores, dtype=np.float64), label=label, ref_ids=ref_ids,
                  distortions=distortions, levels=np.asarray(levels, dtype=np.int64),
                  ref_paths=ref_paths)
