"""The RankIQA report is built from its tables alone and opens on a summary of the numbers."""

from __future__ import annotations

from qbench.report import build_report
from qbench.report.rankiqa import example


def test_report_builds_from_tables_and_summarises_the_measured_numbers(tmp_path):
    example(tmp_path)
    page = build_report(tmp_path).read_text()
    assert "RankIQA ordered 95.0% of pairs correctly" in page
    assert "an untrained network 40.0%" in page
    assert "SRCC/PLCC went from 0.650/0.600 before fine-tuning to 0.600/0.550 after" in page
    assert "Fine-tuning did not raise SRCC (-0.050)" in page
    assert "best: 6" in page and "example pseudo-labels" in page
    assert "Plotly.newPlot" in page and 'src="http' not in page  # plotly inlined: offline
