"""A fingerprinted on-disk cache for generated datasets.

Each entry is a folder ``$QBENCH_HOME/<kind>/<key>/`` holding ``.npz`` arrays and a
``meta.json`` that records the generator version, the parameters and the sha256 of every array
(the content fingerprint). An entry whose version or fingerprint does not match is rebuilt.
Files are written atomically (:func:`qbench.atomic.atomic_write`), so a crash never leaves a half entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from qbench.atomic import atomic_write
from qbench.home import qbench_home


def params_key(params: dict[str, Any]) -> str:
    """A short stable hash of JSON-able parameters."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def array_fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and bytes of ``arrays`` (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def entry_dir(kind: str, version: int, params: dict[str, Any]) -> Path:
    return qbench_home() / kind / f"v{version}-{params_key(params)}"


def save_entry(folder: Path, part: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Store ``arrays`` as ``part.npz`` and record their fingerprint in ``meta.json``."""
    atomic_write(folder / f"{part}.npz", lambda f: np.savez(f, **arrays))
    meta_path = folder / "meta.json"
    all_meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    all_meta.update({k: v for k, v in meta.items() if k != "parts"})
    all_meta.setdefault("parts", {})[part] = array_fingerprint(arrays)
    payload = json.dumps(all_meta, indent=2, sort_keys=True).encode()
    atomic_write(meta_path, payload)


def load_entry(folder: Path, part: str, version: int) -> dict[str, np.ndarray] | None:
    """The arrays of ``part`` if present, of ``version`` and matching their fingerprint."""
    meta_path, npz_path = folder / "meta.json", folder / f"{part}.npz"
    if not (meta_path.exists() and npz_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("generator_version") != version:
            return None
        with np.load(npz_path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if meta.get("parts", {}).get(part) != array_fingerprint(arrays):
        return None
    return arrays
