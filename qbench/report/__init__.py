"""Reports: offline Plotly HTML pages rebuilt from stored results without recomputation.

``build_report(folder)`` recognises three kinds of results folder:

* a study run (``study.json`` with ``{"study": NAME, "preset": ...}``): the page is built by
  ``qbench.report.NAME.build(folder) -> Path``, a module the study provides;
* a leaderboard (``entries.json``): :func:`qbench.report.leaderboard.build`;
* a scoring store (``store/``, e.g. ``results/demo``): :func:`qbench.report.scoring.build`.

``build_all(root)`` rebuilds every report under ``root`` and writes ``root/index.html``.

Writing a study report module ``qbench/report/NAME.py`` (registered in ``REPORTS``): read only
the tables in the folder,
build figures with :mod:`qbench.report.figures`, assemble with
:func:`qbench.report.html.page` (summary paragraph first, generated from the numbers) and
return the path of ``folder/report.html``. Optionally define ``example(folder) -> None`` that
writes a tiny but complete set of its input tables plus ``study.json``: the browser tests
(tests/test_report_browser.py) then build and open that study's page in Chromium too.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qbench.errors import QbenchError
from qbench.registry import Registry

# one report builder per study: ``build(folder) -> Path``; plugins add theirs under the
# entry-point group "qbench.reports" (or call REPORTS.register(name, "module:build"))
REPORTS: Registry[Callable[[Path], Path]] = Registry("study report", group="qbench.reports")
# modules of this package that are infrastructure, not study reports
_NOT_STUDIES = {"html", "figures", "index", "leaderboard", "scoring"}
for _study in ("explainers", "marked_models", "quality_vs_accuracy", "rankiqa"):
    REPORTS.register(_study, f"qbench.report.{_study}:build",
                     info=f"qbench.report.{_study}:__doc__")


@dataclass(frozen=True)
class Found:
    """A results folder and what kind of report it gets."""

    folder: Path
    kind: str  # "study", "leaderboard" or "scoring"
    study: str  # the study name; "leaderboard", or a scoring run's folder name
    preset: str  # the study's preset; a leaderboard's test sets


def study_modules() -> list[str]:
    """Names of the studies that have a report builder."""
    return sorted(REPORTS.names())


def detect(folder: str | Path) -> Found:
    """What report ``folder`` gets; a clear error when it holds no known results."""
    folder = Path(folder)
    spec = folder / "study.json"
    if spec.is_file():
        try:
            meta = json.loads(spec.read_text())
        except (OSError, ValueError) as exc:
            raise QbenchError(f"{spec} is not valid JSON: {exc}") from None
        study = meta.get("study") if isinstance(meta, dict) else None
        if not isinstance(study, str) or not study:
            raise QbenchError(f'{spec} has no "study" name (expected {{"study": NAME, ...}})')
        return Found(folder, "study", study, str(meta.get("preset", "")))
    if (folder / "entries.json").is_file():  # preset: the test sets scored on the board
        sets = sorted(p.stem.removeprefix("items-") for p in folder.glob("items-*.json"))
        return Found(folder, "leaderboard", "leaderboard", ", ".join(sets))
    if (folder / "store").is_dir():  # a scoring run, named after its folder (e.g. demo)
        return Found(folder, "scoring", folder.resolve().name, "")
    raise QbenchError(f"no results store in {folder} (expected {folder}/study.json, "
                      f"{folder}/entries.json or {folder}/store)")


def study_builder(study: str):
    """The report builder of ``study``, or a clear error naming the known studies.

    A study registered in :data:`REPORTS` is found there; by convention a module
    ``qbench/report/<study>.py`` with ``build(folder)`` is found (and registered) too."""
    known = ", ".join(study_modules()) or "none"
    if study not in REPORTS:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", study) or study in _NOT_STUDIES:
            raise QbenchError(f"study name {study!r} has no report module; known: {known}")
        try:
            module = importlib.import_module(f"qbench.report.{study}")
        except ModuleNotFoundError as exc:
            if exc.name != f"qbench.report.{study}":
                raise  # the module exists but one of its imports is missing: show that
            raise QbenchError(f"no report module qbench/report/{study}.py for study {study!r} "
                              f"(or register one in qbench.report.REPORTS); known: {known}"
                              ) from None
        REPORTS.register(study, getattr(module, "build", None) or module)
    build = REPORTS.get(study)
    if not callable(build):
        raise QbenchError(f"the report of study {study!r} has no build(folder) function")
    return build


def finish_study(folder: str | Path, study: str, preset: str, **meta) -> Path:
    """Write ``folder/study.json`` (``meta`` plus git revision and time) and the study's
    report; print and return the report's path. The last step of every study script."""
    from datetime import UTC, datetime

    from qbench.atomic import atomic_write
    from qbench.store import git_revision

    folder = Path(folder)
    record = {"study": study, "preset": preset, **meta, "git_revision": git_revision(),
              "created": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write(folder / "study.json", json.dumps(record, indent=2, default=str).encode())
    try:
        study_builder(study)
        has_report = True
    except QbenchError:
        has_report = False
    if not has_report:  # a new study may have tables before it has a page
        print(f"results: {folder.resolve()} (no report registered for study {study!r}: "
              f"add one to qbench.report.REPORTS)")
        return folder / "study.json"
    report = build_report(folder)
    print(f"report: {report.resolve()}")
    return report


def build_report(results_dir: str | Path) -> Path:
    """Rebuild ``results_dir/report.html`` from the stored results in ``results_dir``."""
    found = detect(results_dir)
    if found.kind == "study":
        return Path(study_builder(found.study)(found.folder))
    if found.kind == "leaderboard":
        from qbench.report import leaderboard

        return leaderboard.build(found.folder)
    from qbench.report import scoring

    return scoring.build(found.folder)


def build_all(root: str | Path, progress=None):
    """Rebuild every report under ``root`` and write ``root/index.html``; see
    :func:`qbench.report.index.build_all`."""
    from qbench.report import index

    return index.build_all(root, progress=progress)


__all__ = ["Found", "build_all", "build_report", "detect", "study_builder", "study_modules"]
