"""Execution engines: dataset x corruption grid x scorers -> store rows.

``qbench.engine.score(...)`` runs on this machine (:mod:`qbench.engine.local`).
"""

from __future__ import annotations

from qbench.engine.local import Condition, ScoreSummary, grid, has_references, score

__all__ = ["Condition", "ScoreSummary", "grid", "has_references", "score"]
