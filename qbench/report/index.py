"""Rebuild every report under a results folder and write its landing page ``index.html``.

The landing page links each study's latest report (latest by the timestamp in
``study.json`` when it has one, else the file's modification time) with one line: study,
preset, date and the headline, the first sentence of that report's own summary paragraph.
A report that fails to rebuild is listed with its reason; the others are still built.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from qbench.errors import QbenchError
from qbench.report import Found, build_report, detect
from qbench.report.figures import sortable_table
from qbench.report.html import note, page, write_page

_TIME_KEYS = ("timestamp", "finished", "date", "created", "started")


@dataclass
class Entry:
    """One results folder on the landing page."""

    found: Found
    date: _dt.datetime
    report: Path | None = None
    headline: str = ""
    error: str = ""


@dataclass
class Built:
    """What :func:`build_all` did."""

    index: Path
    entries: list[Entry] = field(default_factory=list)

    @property
    def failed(self) -> list[Entry]:
        return [e for e in self.entries if e.error]


def find(root: str | Path) -> list[Found]:
    """Every results folder under ``root`` (itself included), outermost first; the inside of a
    results folder (its store, its tables) is not searched."""
    out = []
    for here, dirs, _ in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        try:
            out.append(detect(here))
        except QbenchError:
            continue
        dirs[:] = []  # a results folder's subfolders are its own data
    return out


def _parse_time(value) -> _dt.datetime | None:
    if isinstance(value, int | float):
        return _dt.datetime.fromtimestamp(value, _dt.UTC)
    if isinstance(value, str):
        try:
            t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=_dt.UTC)
    return None


def when(found: Found) -> _dt.datetime:
    """When the results were produced: study.json's timestamp, else its file time."""
    marker = {"study": "study.json", "leaderboard": "entries.json"}.get(found.kind, "store")
    path = found.folder / marker
    if found.kind == "study":
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            meta = {}
        for key in _TIME_KEYS:
            t = _parse_time(meta.get(key)) if isinstance(meta, dict) else None
            if t is not None:
                return t
    if found.kind == "scoring":  # the newest run manifest or row file
        stamps = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
        return _dt.datetime.fromtimestamp(max(stamps, default=path.stat().st_mtime), _dt.UTC)
    return _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC)


_SUMMARY = re.compile(r"<p class=['\"]summary['\"][^>]*>(.*?)</p>", re.S)


def headline(report: Path, limit: int = 260) -> str:
    """The first sentence of a report's summary paragraph ("" when it has none)."""
    m = _SUMMARY.search(report.read_text(errors="replace"))
    if not m:
        return ""
    text = _html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()
    first = re.match(r"(.+?[.!?])(\s|$)", text, re.S)
    text = first.group(1) if first else text
    return text if len(text) <= limit else text[:limit - 1] + "…"


def build_all(root: str | Path,
              progress: Callable[[Entry], None] | None = None) -> Built:
    """Rebuild every report under ``root`` (failures recorded, the rest still built) and
    write ``root/index.html``."""
    root = Path(root)
    if not root.is_dir():
        raise QbenchError(f"no results folder {root}")
    entries = []
    for found in find(root):
        entry = Entry(found, when(found))
        try:
            entry.report = Path(build_report(found.folder))
            entry.headline = headline(entry.report)
        except Exception as exc:  # recorded and shown on the page; the others go on
            lines = str(exc).strip().splitlines()
            entry.error = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]
        entries.append(entry)
        if progress:
            progress(entry)
    index = write_index(root, entries)
    return Built(index, entries)


def _name(e: Entry, root: Path) -> str:
    """A study's name; a scoring store (no study.json) by its folder under the root."""
    if e.found.kind == "scoring":
        return f"{os.path.relpath(e.found.folder, root)} (scoring)"
    return e.found.study


def _rows(root: Path, entries: list[Entry]) -> pd.DataFrame:
    rows = []
    for e in entries:
        rel = os.path.relpath(e.report if e.report else e.found.folder, root)
        rows.append({"study": _name(e, root), "preset": e.found.preset or "-",
                     "date": e.date.strftime("%Y-%m-%d %H:%M"),
                     "headline": e.headline if not e.error else f"rebuild failed: {e.error}",
                     "report": rel if e.report else "(none)", "href": rel if e.report else "",
                     "folder": os.path.relpath(e.found.folder, root)})
    return pd.DataFrame(rows, columns=["study", "preset", "date", "headline", "report", "href",
                                       "folder"])


def summarise(entries: list[Entry], root: Path) -> str:
    """The landing page's summary: how many reports, from which studies, what failed."""
    if not entries:
        return (f"No results were found under {root}: run a study, `qbench run demo` or "
                "`qbench leaderboard run` first.")
    studies = sorted({_name(e, root) for e in entries})
    newest = max(entries, key=lambda e: e.date)
    ok = [e for e in entries if not e.error]
    text = (f"{len(ok)} of {len(entries)} report(s) rebuilt from stored results under "
            f"{root.name or root}, covering {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}"
            f" ({', '.join(studies)}); the newest results are {_name(newest, root)}"
            f"{' / ' + newest.found.preset if newest.found.preset else ''} from "
            f"{newest.date:%Y-%m-%d %H:%M} UTC.")
    failed = [e for e in entries if e.error]
    if failed:
        text += (f" {len(failed)} could not be rebuilt: "
                 + "; ".join(f"{os.path.relpath(e.found.folder, root)} ({e.error[:80]})"
                             for e in failed[:3]) + ("…" if len(failed) > 3 else "") + ".")
    return text


def write_index(root: Path, entries: list[Entry]) -> Path:
    """``root/index.html``: the latest report of every study, then every report."""
    table = _rows(root, entries)
    order = sorted(range(len(entries)), key=lambda i: entries[i].date, reverse=True)
    table = table.iloc[order].reset_index(drop=True)
    latest = table.drop_duplicates("study", keep="first")
    cols = ["study", "preset", "date", "headline", "report"]  # dates in UTC
    sections = [
        ("Latest report of each study", note("One line per study: its newest results "
                                              "(dates UTC); click a header to sort.")
         + sortable_table(latest, columns=cols, links={"report": "href"}, nowrap=["date"],
                          table_id="latest")),
        ("Every report", sortable_table(table, columns=cols, nowrap=["date"],
                                        links={"report": "href"}, table_id="all")),
    ]
    built = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = page("qbench results", summarise(entries, root), sections,
                meta=f"index built {built} by `qbench report --all`")
    return write_page(root / "index.html", html)
