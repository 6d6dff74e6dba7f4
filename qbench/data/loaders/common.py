"""Helpers shared by the real-dataset loaders: locating roots and resolving file names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qbench.data.base import IQASet, LabelSpec
from qbench.data.imagefile import read_image, safe_name
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


def file_index(folder: Path) -> dict[str, list[Path]]:
    """The files directly in ``folder`` by lower-cased name (releases mix case: I01.BMP).

    Only the official layout is searched: sub-folders are NOT (a stale copy such as
    ``images/old/I01_01_01.png`` must never stand in for ``images/I01_01_01.png``)."""
    index: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file():
            index.setdefault(p.name.lower(), []).append(p)
    return index


def resolve(index: dict[str, list[Path]], name: str, dataset: str, folder: Path) -> Path:
    """The file ``name`` in an index of :func:`file_index`: the exact name, else the one file
    whose name differs only in case (two such files are ambiguous: a DatasetFormatError)."""
    found = index.get(name.lower(), [])
    exact = [p for p in found if p.name == name]
    if exact:
        return exact[0]
    if len(found) > 1:
        raise DatasetFormatError(dataset, str(folder), f"listed image {name!r} matches "
                                 f"{len(found)} files that differ only in case")
    if not found:
        raise DatasetFormatError(dataset, str(folder), f"listed image {name!r} is not there")
    return found[0]


class Unique:
    """Refuses a score file that lists one image twice (it would be scored twice)."""

    def __init__(self, dataset: str, unit: str = "line") -> None:
        self.dataset, self.unit, self.first = dataset, unit, {}

    def check(self, key: str, where: str, n: int) -> None:
        k = key.lower()
        if k in self.first:
            raise DatasetFormatError(self.dataset, where, f"{key!r} is listed again (first at "
                                     f"{self.unit} {self.first[k]}): a duplicate row")
        self.first[k] = n


def check_level(level: int, low: int, high: int, dataset: str, where: str) -> int:
    if not low <= level <= high:
        raise DatasetFormatError(dataset, where, f"distortion level {level} unknown (the "
                                 f"release has levels {low}-{high})")
    return level


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


def parse_float(text: str | None, dataset: str, where: str,
                valid: tuple[float, float] | None = None) -> float:
    """A score: a finite number, inside ``valid`` (the dataset's declared range) if given;
    anything else is a DatasetFormatError naming ``where`` (file and line)."""
    if text is None:
        raise DatasetFormatError(dataset, where, "value missing")
    try:
        value = float(text)
    except ValueError:
        raise DatasetFormatError(dataset, where, f"not a number: {text!r}") from None
    return check_score(value, dataset, where, valid, str(text).strip())


def check_score(value: float, dataset: str, where: str,
                valid: tuple[float, float] | None = None, text: str = "") -> float:
    """``value`` if finite and inside ``valid``; otherwise a DatasetFormatError at ``where``."""
    shown = text or f"{value:g}"
    if value != value:  # NaN
        raise DatasetFormatError(dataset, where, "score is NaN (not finite)")
    if not np.isfinite(value):
        raise DatasetFormatError(dataset, where, f"score {shown!r} is not finite")
    if valid is not None and not valid[0] <= value <= valid[1]:
        raise DatasetFormatError(dataset, where, f"score {shown} is outside the dataset's "
                                 f"declared range [{valid[0]:g}, {valid[1]:g}]")
    return float(value)


def make_iqa_set(name: str, paths: list[Path], scores: list[float], label: LabelSpec,
                 ref_ids: list[str], distortions: list[str], levels: list[int],
                 ref_paths: dict[str, Path], root: Path) -> IQASet:
    """Build an :class:`~qbench.data.base.IQASet` whose item ids are paths under ``root``."""
    if not paths:
        raise DatasetFormatError(name, str(root), "the score file lists no images")
    ids = [safe_name(p.relative_to(root).as_posix()) for p in paths]
    return IQASet(name=name, split="all", item_ids=ids, reader=lambda i: read_image(paths[i]),
                  paths=list(paths),
                  scores=np.asarray(scores, dtype=np.float64), label=label, ref_ids=ref_ids,
                  distortions=distortions, levels=np.asarray(levels, dtype=np.int64),
                  ref_paths=ref_paths)
