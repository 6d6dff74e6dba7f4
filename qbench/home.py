"""Where qbench keeps its caches: ``$QBENCH_HOME`` (default ``~/.cache/qbench``)."""

from __future__ import annotations

import os
from pathlib import Path


def qbench_home() -> Path:
    """The cache root; created on first use."""
    home = Path(os.environ.get("QBENCH_HOME", Path.home() / ".cache" / "qbench")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def datasets_root() -> Path:
    """Where real datasets are looked for: ``$QBENCH_DATA`` or ``$QBENCH_HOME/datasets``."""
    env = os.environ.get("QBENCH_DATA")
    return Path(env).expanduser() if env else qbench_home() / "datasets"
