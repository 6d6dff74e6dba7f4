"""Reports: offline Plotly HTML pages rebuilt from the store without recomputation."""

from __future__ import annotations

from pathlib import Path


def build_report(results_dir: str | Path) -> Path:
    """Rebuild ``results_dir/report.html`` from ``results_dir/store``."""
    from qbench.report import scoring

    return scoring.build(results_dir)


__all__ = ["build_report"]
