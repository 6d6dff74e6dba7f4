"""The results store: DuckDB over Parquet, embedded, no server.

Layout of a store folder::

    rows/<run>-<time>-<writer>-<n>.parquet      one row per (run, dataset, item, corruption,
                                                severity, seed, scorer) -> value
    failures/<run>-<time>-<writer>-<n>.parquet  the same key -> reason and kind, for items that
                                                could not be scored
    notes/<run>-<time>-<writer>-<n>.parquet     (run, dataset, item) -> note: how an input was
                                                adapted (e.g. a grayscale file made RGB)
    manifests/<run>.json                        config, git revision, package versions, seeds,
                                                host, and one entry per attempt (start, end,
                                                status)
    locks/<run>.lock                            held while an engine writes the run

Every part file is written atomically and never rewritten, so a killed writer leaves either a
whole part or none, and concurrent writers never touch the same file. Manifests are updated
under a file lock, so concurrent attempts never lose each other's entries. A run id is a hash
of the run's config: running the same config again is the same run, and :meth:`Store.done`
tells the engine which keys are finished so they are reused instead of recomputed.

A failure has a ``kind``: ``item`` (the item itself cannot be scored by that scorer: an
unreadable file, an image too small, a non-finite score -- a final answer, not retried),
``config`` (the scorer or the setup failed, not the item: a metric that raises on every item,
returns the wrong shape, is nondeterministic) or ``transient`` (a timeout, out of memory).
``config`` and ``transient`` failures are retried when the run is run again; the ``failures``
view shows, per key, the latest attempt's failure unless a value has since been written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from qbench.atomic import atomic_write
from qbench.faults import kill_point

try:
    import fcntl
except ImportError:  # not POSIX: no inter-process locks (single-writer use only)
    fcntl = None  # type: ignore[assignment]

KEY = ("run", "dataset", "item", "corruption", "severity", "seed", "scorer")
_KEY_FIELDS = [
    pa.field("run", pa.string()),
    pa.field("dataset", pa.string()),
    pa.field("item", pa.string()),
    pa.field("corruption", pa.string()),
    pa.field("severity", pa.int32()),
    pa.field("seed", pa.int64()),
    pa.field("scorer", pa.string()),
]
ROW_SCHEMA = pa.schema([*_KEY_FIELDS, pa.field("value", pa.float64())])
FAILURE_SCHEMA = pa.schema([*_KEY_FIELDS, pa.field("reason", pa.string()),
                            pa.field("kind", pa.string())])
NOTE_SCHEMA = pa.schema([*_KEY_FIELDS[:3], pa.field("note", pa.string())])
FAILURE_KINDS = ("item", "config", "transient")  # only "item" failures are final
CLEAN = "clean"  # corruption name of an uncorrupted image (severity 0)
TRACKED_PACKAGES = ("qbench", "torch", "torchvision", "numpy", "pyiqa", "dowhy", "duckdb",
                    "pyarrow", "pandas", "scipy", "scikit-image", "plotly", "pillow")


def run_id(config: dict[str, Any]) -> str:
    """The id of the run described by ``config`` (stable across processes and machines)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
        rev = out.stdout.strip()
        if out.returncode != 0 or not rev:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@contextlib.contextmanager
def _flock(path: Path, wait_message: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (released by the kernel if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if wait_message:
                    print(wait_message, file=sys.stderr, flush=True)
                fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """A folder of Parquet parts queried with DuckDB."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for sub in ("rows", "failures", "notes", "manifests", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._writer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count()

    # -- runs -------------------------------------------------------------------------------
    def begin_run(self, config: dict[str, Any], seeds: Sequence[int] = ()) -> str:
        """Register an attempt of the run ``config``; returns its run id.

        Earlier attempts on this host still marked ``running`` whose process is gone (killed)
        are marked ``interrupted``."""
        rid = run_id(config)
        with self._manifest_lock(rid):
            manifest = self.manifest(rid) or {
                "run": rid,
                "config": config,
                "seeds": list(seeds),
                "attempts": [],
            }
            host = socket.gethostname()
            for old in manifest["attempts"]:
                if (old.get("status") == "running" and old.get("host") == host
                        and isinstance(old.get("pid"), int) and not _pid_alive(old["pid"])):
                    old["status"] = "interrupted"
            manifest["attempts"].append({
                "start": _now(), "end": None, "status": "running",
                "git_revision": git_revision(), "packages": package_versions(),
                "host": host, "machine": platform.platform(),
                "python": platform.python_version(), "pid": os.getpid(),
            })
            self._write_manifest(manifest)
        return rid

    def end_run(self, rid: str, status: str = "finished", **summary: Any) -> None:
        with self._manifest_lock(rid):
            manifest = self.manifest(rid)
            if manifest is None:
                raise KeyError(f"no run {rid!r} in {self.root}")
            mine = [a for a in manifest["attempts"]
                    if a.get("pid") == os.getpid() and a.get("status") == "running"]
            attempt = mine[-1] if mine else manifest["attempts"][-1]
            attempt.update({"end": _now(), "status": status, **summary})
            self._write_manifest(manifest)

    def record_scorers(self, rid: str, infos: Iterable[dict[str, Any]]) -> None:
        """Keep each scorer's metadata (kind, direction, version...) with the run."""
        with self._manifest_lock(rid):
            manifest = self.manifest(rid)
            if manifest is None:
                raise KeyError(f"no run {rid!r} in {self.root}")
            scorers = manifest.setdefault("scorers", {})
            scorers.update({info["name"]: info for info in infos})
            self._write_manifest(manifest)

    def scorer_info(self, runs: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Metadata of every scorer recorded by ``runs`` (default: every run in this store).

        Pass the runs a table was read from: a store that kept an earlier run of a retrained
        metric records both versions under one name."""
        info: dict[str, dict[str, Any]] = {}
        if runs is not None:
            for rid in runs:
                info.update((self.manifest(rid) or {}).get("scorers", {}))
            return info
        for m in self.manifests():
            info.update(m.get("scorers", {}))
        return info

    def manifest(self, rid: str) -> dict[str, Any] | None:
        path = self.root / "manifests" / f"{rid}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def manifests(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted((self.root / "manifests").glob("*.json"))]

    def _manifest_lock(self, rid: str) -> contextlib.AbstractContextManager[None]:
        return _flock(self.root / "locks" / f"{rid}.manifest.lock")

    def run_lock(self, rid: str) -> contextlib.AbstractContextManager[None]:
        """Exclusive right to compute and write run ``rid`` in this store.

        A second process scoring the same run waits here until the first finishes (or dies),
        then finds the first one's rows finished instead of computing them twice."""
        return _flock(self.root / "locks" / f"{rid}.lock",
                      f"qbench: run {rid} is being written by another process into "
                      f"{self.root}; waiting for it to finish")

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        blob = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()

        def write(f: BinaryIO) -> None:
            f.write(blob[: len(blob) // 2])
            kill_point("manifest-write")
            f.write(blob[len(blob) // 2:])

        atomic_write(self.root / "manifests" / f"{manifest['run']}.json", write)

    # -- writing ----------------------------------------------------------------------------
    def write_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append finished rows (dicts with the key columns and ``value``) as one part."""
        return self._write("rows", ROW_SCHEMA, rows)

    def write_failures(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append failures (key columns, ``reason`` and optionally ``kind``, one of
        :data:`FAILURE_KINDS`; default ``item``) as one part."""
        rows = [{**r, "kind": r.get("kind") or "item"} for r in rows]
        for r in rows:
            if r["kind"] not in FAILURE_KINDS:
                raise ValueError(f"failure kind must be one of {FAILURE_KINDS}, not {r['kind']!r}")
        return self._write("failures", FAILURE_SCHEMA, rows)

    def write_notes(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append notes (run, dataset, item, note) about how inputs were adapted."""
        return self._write("notes", NOTE_SCHEMA, rows)

    def _write(self, kind: str, schema: pa.Schema, rows: Iterable[dict[str, Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        table = pa.Table.from_pylist(rows, schema=schema)
        run = rows[0]["run"]
        # time first: parts sort in writing order, so "the latest failure of a key" is defined
        name = f"{run}-{time.time_ns():020d}-{self._writer}-{next(self._counter):06d}.parquet"

        def write(f: BinaryIO) -> None:
            pq.write_table(table, f)
            kill_point("part-write")

        atomic_write(self.root / kind / name, write)
        kill_point("part")
        return len(rows)

    # -- reading ----------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        for kind, schema, view in (("rows", ROW_SCHEMA, "rows"),
                                   ("failures", FAILURE_SCHEMA, "failures_log"),
                                   ("notes", NOTE_SCHEMA, "notes")):
            files = sorted((self.root / kind).glob("*.parquet"))
            if files:
                paths = ", ".join(f"'{p.as_posix()}'" for p in files)
                source = f"read_parquet([{paths}], union_by_name = true, filename = true)"
            else:
                con.register(f"{kind}_empty", schema.empty_table())
                source = f"(SELECT *, '' AS filename FROM {kind}_empty)"
            cols = ", ".join(f.name for f in schema)
            if kind == "failures":  # parts written before failures had a kind are final
                cols = cols.replace("kind", "coalesce(kind, 'item') AS kind")
            con.execute(f"CREATE VIEW {view} AS SELECT {cols}, filename FROM {source}")
        key = ", ".join(KEY)
        # the current failures: per key the latest attempt's, unless a value was written since
        con.execute(f"""CREATE VIEW failures AS
            SELECT {key}, reason, kind FROM (
                SELECT * FROM failures_log ANTI JOIN rows USING ({key}))
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY filename DESC) = 1""")
        return con

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run SQL over the views ``rows``, ``failures`` (current), ``failures_log`` (every
        attempt's) and ``notes``."""
        con = self._connect()
        try:
            return con.execute(sql, list(params)).df()
        finally:
            con.close()

    def rows(self, run: str | None = None) -> pd.DataFrame:
        where = "WHERE run = ?" if run else ""
        return self.query(f"SELECT {', '.join(KEY)}, value FROM rows {where} "
                          f"ORDER BY {', '.join(KEY)}", [run] if run else [])

    def failures(self, run: str | None = None) -> pd.DataFrame:
        """The current failure of each key that has no value (see the module docstring)."""
        where = "WHERE run = ?" if run else ""
        return self.query(f"SELECT * FROM failures {where} ORDER BY {', '.join(KEY)}",
                          [run] if run else [])

    def notes(self, run: str | None = None) -> pd.DataFrame:
        """Distinct notes per item (an item read under several conditions is noted once)."""
        where = "WHERE run = ?" if run else ""
        return self.query(f"SELECT DISTINCT run, dataset, item, note FROM notes {where} "
                          "ORDER BY run, dataset, item, note", [run] if run else [])

    def done(self, run: str) -> set[tuple]:
        """Keys (dataset, item, corruption, severity, seed, scorer) finished in ``run``:
        those with a value and those whose current failure is an ``item`` failure (a final
        answer). ``config`` and ``transient`` failures are not finished: a rerun retries them."""
        sql = ("SELECT dataset, item, corruption, severity, seed, scorer FROM rows WHERE run = ? "
               "UNION ALL "
               "SELECT dataset, item, corruption, severity, seed, scorer FROM failures "
               "WHERE run = ? AND kind = 'item'")
        con = self._connect()
        try:
            return {tuple(r) for r in con.execute(sql, [run, run]).fetchall()}
        finally:
            con.close()
