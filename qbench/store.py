"""The results store: DuckDB over Parquet, embedded, no server.

Layout of a store folder::

    rows/<run>-<writer>-<n>.parquet      one row per (run, dataset, item, corruption,
                                         severity, seed, scorer) -> value
    failures/<run>-<writer>-<n>.parquet  the same key -> reason, for items that could not be scored
    manifests/<run>.json                 config, git revision, package versions, seeds, host,
                                         and one entry per attempt (start, end, status)

Every part file is written atomically and never rewritten, so a killed writer leaves either a
whole part or none, and concurrent writers never touch the same file. A run id is a hash of the
run's config: running the same config again is the same run, and :meth:`Store.done` tells the
engine which keys are finished so they are reused instead of recomputed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import os
import platform
import socket
import subprocess
import uuid
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from qbench.atomic import atomic_write

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
FAILURE_SCHEMA = pa.schema([*_KEY_FIELDS, pa.field("reason", pa.string())])
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


class Store:
    """A folder of Parquet parts queried with DuckDB."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for sub in ("rows", "failures", "manifests"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._writer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count()

    # -- runs -------------------------------------------------------------------------------
    def begin_run(self, config: dict[str, Any], seeds: Sequence[int] = ()) -> str:
        """Register an attempt of the run ``config``; returns its run id."""
        rid = run_id(config)
        manifest = self.manifest(rid) or {
            "run": rid,
            "config": config,
            "seeds": list(seeds),
            "attempts": [],
        }
        manifest["attempts"].append({
            "start": _now(), "end": None, "status": "running",
            "git_revision": git_revision(), "packages": package_versions(),
            "host": socket.gethostname(), "machine": platform.platform(),
            "python": platform.python_version(), "pid": os.getpid(),
        })
        self._write_manifest(manifest)
        return rid

    def end_run(self, rid: str, status: str = "finished", **summary: Any) -> None:
        manifest = self.manifest(rid)
        if manifest is None:
            raise KeyError(f"no run {rid!r} in {self.root}")
        attempt = manifest["attempts"][-1]
        attempt.update({"end": _now(), "status": status, **summary})
        self._write_manifest(manifest)

    def record_scorers(self, rid: str, infos: Iterable[dict[str, Any]]) -> None:
        """Keep each scorer's metadata (kind, direction, version...) with the run."""
        manifest = self.manifest(rid)
        if manifest is None:
            raise KeyError(f"no run {rid!r} in {self.root}")
        scorers = manifest.setdefault("scorers", {})
        scorers.update({info["name"]: info for info in infos})
        self._write_manifest(manifest)

    def scorer_info(self) -> dict[str, dict[str, Any]]:
        """Metadata of every scorer recorded by any run in this store."""
        info: dict[str, dict[str, Any]] = {}
        for m in self.manifests():
            info.update(m.get("scorers", {}))
        return info

    def manifest(self, rid: str) -> dict[str, Any] | None:
        path = self.root / "manifests" / f"{rid}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def manifests(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted((self.root / "manifests").glob("*.json"))]

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write(self.root / "manifests" / f"{manifest['run']}.json",
                     json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())

    # -- writing ----------------------------------------------------------------------------
    def write_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append finished rows (dicts with the key columns and ``value``) as one part."""
        return self._write("rows", ROW_SCHEMA, rows)

    def write_failures(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append failures (key columns and ``reason``) as one part."""
        return self._write("failures", FAILURE_SCHEMA, rows)

    def _write(self, kind: str, schema: pa.Schema, rows: Iterable[dict[str, Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        table = pa.Table.from_pylist(rows, schema=schema)
        run = rows[0]["run"]
        name = f"{run}-{self._writer}-{next(self._counter):06d}.parquet"
        atomic_write(self.root / kind / name, lambda f: pq.write_table(table, f))
        return len(rows)

    # -- reading ----------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        for kind, schema in (("rows", ROW_SCHEMA), ("failures", FAILURE_SCHEMA)):
            files = sorted((self.root / kind).glob("*.parquet"))
            if files:
                paths = ", ".join(f"'{p.as_posix()}'" for p in files)
                con.execute(f"CREATE VIEW {kind} AS SELECT * FROM read_parquet([{paths}])")
            else:
                con.register(f"{kind}_empty", schema.empty_table())
                con.execute(f"CREATE VIEW {kind} AS SELECT * FROM {kind}_empty")
        return con

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run SQL over the views ``rows`` and ``failures``."""
        con = self._connect()
        try:
            return con.execute(sql, list(params)).df()
        finally:
            con.close()

    def rows(self, run: str | None = None) -> pd.DataFrame:
        where = "WHERE run = ?" if run else ""
        return self.query(f"SELECT * FROM rows {where} ORDER BY {', '.join(KEY)}",
                          [run] if run else [])

    def failures(self, run: str | None = None) -> pd.DataFrame:
        where = "WHERE run = ?" if run else ""
        return self.query(f"SELECT * FROM failures {where} ORDER BY {', '.join(KEY)}",
                          [run] if run else [])

    def done(self, run: str) -> set[tuple]:
        """Keys (dataset, item, corruption, severity, seed, scorer) finished in ``run``:
        those with a value and those recorded as failed (a failure is a final answer)."""
        sql = ("SELECT dataset, item, corruption, severity, seed, scorer FROM rows WHERE run = ? "
               "UNION ALL "
               "SELECT dataset, item, corruption, severity, seed, scorer FROM failures "
               "WHERE run = ?")
        con = self._connect()
        try:
            return {tuple(r) for r in con.execute(sql, [run, run]).fetchall()}
        finally:
            con.close()
