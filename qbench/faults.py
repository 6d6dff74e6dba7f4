"""Crash points for the reliability tests: make this process SIGKILL itself at a chosen point.

``QBENCH_KILL_AT="<point>:<k>"`` kills the process the k-th time (1-based) execution reaches
``kill_point("<point>")``. Without that variable ``kill_point`` is a no-op (one dict lookup),
so normal runs behave exactly as if the hook did not exist. The points are named where they
are placed (store parts and manifests, engine batches, metric calls).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "QBENCH_KILL_AT"
_reached: Counter[str] = Counter()


def kill_point(point: str) -> None:
    """SIGKILL this process if ``$QBENCH_KILL_AT`` names ``point`` and its count is reached."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, k = spec.rpartition(":")
    if name != point:
        return
    _reached[point] += 1
    if _reached[point] == int(k):
        os.kill(os.getpid(), signal.SIGKILL)
