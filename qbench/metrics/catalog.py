"""The catalogue behind ``qbench metrics list``: every metric with its metadata and whether
it can be created offline right now.

For pyiqa metrics the metadata comes from pyiqa's configuration table (no model is built).
Offline usability is found by trying to create each metric with downloads refused; the answer
is cached in ``$QBENCH_HOME/metrics-offline.json`` under a fingerprint of the weight caches
(file names and sizes), so it is recomputed only when a weight file appears or disappears.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from qbench.atomic import atomic_write
from qbench.home import qbench_home
from qbench.metrics import registry


@dataclass
class CatalogRow:
    name: str
    kind: str
    higher_is_better: bool | None
    min_size: int
    needs_weights: bool
    trained_on: tuple[str, ...]
    offline: bool
    reason: str = ""


def _cache_fingerprint() -> str:
    from qbench.metrics.pyiqa_adapter import _pyiqa, hf_cache

    h = hashlib.sha256(_pyiqa().__version__.encode())
    for root in (Path(torch.hub.get_dir()), Path(hf_cache()), Path.home() / ".cache" / "clip"):
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    h.update(f"{p}|{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _probe(name: str) -> tuple[bool, str]:
    try:
        registry.create(name)
        return True, ""
    except Exception as exc:
        return False, str(exc).splitlines()[0][:300]


def pyiqa_rows(check: bool = True, progress: bool = False) -> list[CatalogRow]:
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    from qbench.metrics.pyiqa_adapter import MIN_SIZE, WEIGHT_FREE, available, trained_on

    cache_file = qbench_home() / "metrics-offline.json"
    key = _cache_fingerprint() if check else ""
    known = {}
    if check and cache_file.exists():
        stored = json.loads(cache_file.read_text())
        known = stored.get("results", {}) if stored.get("key") == key else {}
    rows = []
    for i, name in enumerate(available()):
        cfg = DEFAULT_CONFIGS.get(name, {})
        full = f"pyiqa:{name}"
        if name in WEIGHT_FREE:
            ok, why = True, ""
        elif not check:
            ok, why = False, "not checked (run with --check)"
        elif full in known:
            ok, why = known[full]
        else:
            if progress:
                print(f"  checking {full} ({i + 1}/{len(available())})", flush=True)
            ok, why = _probe(full)
            known[full] = (ok, why)
        rows.append(CatalogRow(full, cfg.get("metric_mode", "?"),
                               not cfg.get("lower_better", False),
                               MIN_SIZE.get(name, 1), name not in WEIGHT_FREE, trained_on(name),
                               ok, why))
    if check:
        atomic_write(cache_file, json.dumps({"key": key, "results": known}, indent=1).encode())
    return rows


def rows(check: bool = True, progress: bool = False) -> list[CatalogRow]:
    """Built-ins and plugins (created to read their metadata), then every pyiqa metric."""
    out = []
    for name in registry.names(include_pyiqa=False):
        try:
            info = registry.create(name).info
            out.append(CatalogRow(name, info.kind, info.higher_is_better, info.min_size,
                                  info.needs_weights, tuple(info.trained_on), True))
        except Exception as exc:
            out.append(CatalogRow(name, "?", None, 0, False, (), False, str(exc)[:300]))
    return out + pyiqa_rows(check=check, progress=progress)


def as_json(catalog: list[CatalogRow]) -> str:
    return json.dumps([asdict(r) for r in catalog], indent=2)
