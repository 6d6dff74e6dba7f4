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

Every value and failure also records the ``content`` of its item (a hash of the image file's
bytes, see :meth:`qbench.data.base.ImageSet.content`; empty for in-memory datasets and for parts
written before it was recorded). A key is finished only for the content it was computed from:
a replaced or repaired file is scored again, and per key the latest outcome (value or failure)
is the current one, so the ``rows`` view never holds a stale value beside a new one.

Damage is contained, never fatal: a part that cannot be read (a truncated copy, a disk error)
is moved aside as ``<part>.parquet.corrupt`` with one line on stderr, every other row stays
usable, and the keys it held are simply not finished (a rerun recomputes them). A damaged
manifest is moved aside as ``<run>.json.corrupt`` likewise, and a rerun writes a new one.
Paths are never pasted into SQL (an apostrophe in a folder name is just a character), and a
folder that cannot be written is one :class:`StoreAccessError` line, not a traceback.
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
from qbench.errors import QbenchError
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
_CONTENT = pa.field("content", pa.string())  # hash of the item's file (see the docstring)
ROW_SCHEMA = pa.schema([*_KEY_FIELDS, pa.field("value", pa.float64()), _CONTENT])
FAILURE_SCHEMA = pa.schema([*_KEY_FIELDS, pa.field("reason", pa.string()),
                            pa.field("kind", pa.string()), _CONTENT])
NOTE_SCHEMA = pa.schema([*_KEY_FIELDS[:3], pa.field("note", pa.string())])
FAILURE_KINDS = ("item", "config", "transient")  # only "item" failures are final
CLEAN = "clean"  # corruption name of an uncorrupted image (severity 0)
TRACKED_PACKAGES = ("qbench", "torch", "torchvision", "numpy", "pyiqa", "dowhy", "duckdb",
                    "pyarrow", "pandas", "scipy", "scikit-image", "plotly", "pillow")


class StoreAccessError(QbenchError):
    """The results store's folder cannot be created or written (read-only, no space...)."""


def _access_error(root: Path, exc: OSError) -> StoreAccessError:
    what = exc.strerror or type(exc).__name__
    where = exc.filename or root
    return StoreAccessError(f"cannot write the results store {root}: {what} ({where}); "
                            "choose a writable output folder")


def _safe_text(value: Any) -> Any:
    """A string that UTF-8 can hold (a non-UTF-8 file name's bytes escaped), else as given."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(value).decode("utf-8", "backslashreplace")
    return value


def _say(message: str) -> None:
    print(f"qbench: {message}", file=sys.stderr, flush=True)


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise _access_error(path.parent.parent, exc) from None
    with f:
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
        try:
            for sub in ("rows", "failures", "notes", "manifests", "locks"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _access_error(self.root, exc) from None
        self._writer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count()
        self._checked: set[tuple] = set()  # parts whose footer was read: (path, size, mtime)
        self._skipped: set[Path] = set()  # unreadable parts that could not be moved aside

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
        """Run ``rid``'s manifest; None if there is none, or if it was damaged (it is then
        moved aside with one line on stderr, and the next attempt writes a new one)."""
        return self._read_manifest(self.root / "manifests" / f"{rid}.json")

    def manifests(self) -> list[dict[str, Any]]:
        found = (self._read_manifest(p) for p in sorted((self.root / "manifests").glob("*.json")))
        return [m for m in found if m is not None]

    def _read_manifest(self, path: Path) -> dict[str, Any] | None:
        try:
            manifest = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            if isinstance(manifest, dict) and isinstance(manifest.get("attempts"), list):
                return manifest
            reason = "not a qbench manifest"
        self._quarantine(path, f"run manifest {path.name} is damaged ({reason})",
                         "a rerun writes a new one")
        return None

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

        try:
            atomic_write(self.root / "manifests" / f"{manifest['run']}.json", write)
        except OSError as exc:
            raise _access_error(self.root, exc) from None

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
        rows = [{k: _safe_text(v) for k, v in r.items()} for r in rows]
        if not rows:
            return 0
        table = pa.Table.from_pylist(rows, schema=schema)
        run = rows[0]["run"]
        # time first: parts sort in writing order, so "the latest failure of a key" is defined
        name = f"{run}-{time.time_ns():020d}-{self._writer}-{next(self._counter):06d}.parquet"

        def write(f: BinaryIO) -> None:
            pq.write_table(table, f)
            kill_point("part-write")

        try:
            atomic_write(self.root / kind / name, write)
        except OSError as exc:
            raise _access_error(self.root, exc) from None
        kill_point("part")
        return len(rows)

    # -- damage ---------------------------------------------------------------------------
    def _quarantine(self, path: Path, what: str, consequence: str) -> None:
        """Move ``path`` aside as ``<name>.corrupt`` and say so in one line."""
        aside = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            return  # another reader moved it first
        except OSError as exc:
            self._skipped.add(path)
            _say(f"{what}; skipped (could not move it aside: {exc.strerror}); {consequence}")
            return
        _say(f"{what}; moved aside to {aside.name}; {consequence}")

    def _bad_part(self, path: Path, exc: BaseException) -> None:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        self._quarantine(path, f"store part {path.parent.name}/{path.name} is unreadable "
                         f"({reason})", "its results will be recomputed by a rerun")

    def _parts(self, kind: str) -> list[Path]:
        """The readable parts of ``kind``: a part whose footer cannot be read is quarantined."""
        good = []
        for p in sorted((self.root / kind).glob("*.parquet")):
            if p in self._skipped:
                continue
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            stamp = (p, st.st_size, st.st_mtime_ns)
            if stamp not in self._checked:
                try:
                    pq.read_metadata(p)
                except Exception as exc:  # pyarrow raises OSError, ArrowInvalid, ...
                    self._bad_part(p, exc)
                    continue
                self._checked.add(stamp)
            good.append(p)
        return good

    def _recover(self, exc: duckdb.Error) -> bool:
        """After a query failed: find the parts that cannot be read in full and quarantine
        them. True if any was (the query is worth repeating)."""
        named = [p for kind in ("rows", "failures", "notes") for p in self._parts(kind)
                 if p.name in str(exc)]
        suspects = named or [p for kind in ("rows", "failures", "notes")
                             for p in self._parts(kind)]
        found = False
        for p in suspects:
            try:
                pq.read_table(p)
            except Exception as err:  # a damaged page: pyarrow raises many types
                self._bad_part(p, err)
                found = True
        if not found and named and isinstance(exc, duckdb.IOException |
                                              duckdb.InvalidInputException):
            for p in named:  # pyarrow reads what DuckDB cannot: DuckDB's word decides
                self._bad_part(p, exc)
            found = True
        return found

    def _run_sql(self, sql: str, params: Sequence[Any], fetch: Any) -> Any:
        """``fetch(con.execute(sql, params))`` over the store's views; a part that turns out
        to be damaged is quarantined and the query repeated without it."""
        for _ in range(10):
            con = self._connect()
            try:
                return fetch(con.execute(sql, list(params)))
            except duckdb.Error as exc:
                if isinstance(exc, duckdb.ParserException | duckdb.BinderException |
                              duckdb.CatalogException) or not self._recover(exc):
                    raise
            finally:
                con.close()
        raise StoreAccessError(f"the results store {self.root} keeps failing to read; "
                               "see the lines above")

    # -- reading ----------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        for kind, schema in (("rows", ROW_SCHEMA), ("failures", FAILURE_SCHEMA),
                             ("notes", NOTE_SCHEMA)):
            # no path is ever pasted into SQL: the parts are read through the relation API
            con.register(f"{kind}_empty", pa.schema([*schema, pa.field("filename", pa.string())])
                         .empty_table())
            files = [p.as_posix() for p in self._parts(kind)]
            source = f"{kind}_empty"
            if files:
                con.read_parquet(files, union_by_name=True, filename=True).create_view(
                    f"{kind}_parts")
                source = f"(SELECT * FROM {kind}_parts UNION ALL BY NAME SELECT * FROM {source})"
            cols = [f.name for f in schema]
            select = ", ".join(
                "coalesce(kind, 'item') AS kind" if c == "kind"  # parts before kinds: final
                else "coalesce(content, '') AS content" if c == "content" else c for c in cols)
            view = "failures_log" if kind == "failures" else f"{kind}_log"
            con.execute(f"CREATE VIEW {view} AS SELECT {select}, "
                        f"parse_filename(filename) AS filename FROM {source}")
        con.execute("CREATE VIEW notes AS SELECT * FROM notes_log")
        key = ", ".join(KEY)
        # per key the latest outcome (by part name: parts sort in writing order) is current:
        # a failure after a value (a file replaced by a broken one) hides the value, a value
        # after a failure (a retry that worked, a repaired file) hides the failure
        con.execute(f"""CREATE VIEW outcomes AS
            SELECT * FROM (
                SELECT {key}, value, NULL::VARCHAR AS reason, NULL::VARCHAR AS kind, content,
                       filename, 0 AS failed FROM rows_log
                UNION ALL
                SELECT {key}, NULL::DOUBLE, reason, kind, content, filename, 1
                FROM failures_log)
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY filename DESC, failed) = 1""")
        con.execute(f"CREATE VIEW rows AS SELECT {key}, value, content, filename FROM outcomes "
                    "WHERE failed = 0")
        con.execute(f"CREATE VIEW failures AS SELECT {key}, reason, kind FROM outcomes "
                    "WHERE failed = 1")
        return con

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run SQL over the views ``rows`` (the current value of each key), ``failures``
        (current), ``failures_log`` (every attempt's), ``rows_log`` (every value ever written)
        and ``notes``."""
        return self._run_sql(sql, params, lambda result: result.df())

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

    def finished(self, run: str) -> dict[tuple, str]:
        """Keys (dataset, item, corruption, severity, seed, scorer) finished in ``run``, each
        with the content (item file hash) it was computed from: those whose current outcome is
        a value or an ``item`` failure (a final answer for that content). ``config`` and
        ``transient`` failures are not finished: a rerun retries them."""
        sql = ("SELECT dataset, item, corruption, severity, seed, scorer, content FROM outcomes "
               "WHERE run = ? AND (failed = 0 OR kind = 'item')")
        found = self._run_sql(sql, [run], lambda result: result.fetchall())
        return {tuple(r[:-1]): r[-1] for r in found}

    def done(self, run: str) -> set[tuple]:
        """The keys of :meth:`finished`, whatever content they were computed from."""
        return set(self.finished(run))
