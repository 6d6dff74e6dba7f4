"""Image-quality metrics, created by name: ``qbench.metrics.create("pyiqa:ssim")``.

A metric follows :class:`~qbench.metrics.base.Metric`: ``m(images, refs=None)`` returns one
float per image, and ``m.info`` declares kind, direction, minimum size and provenance.
"""

from __future__ import annotations

from qbench.errors import UnknownNameError
from qbench.metrics.base import InputTooSmallError, Metric, MetricInfo


def create(name: str, device: str = "cpu") -> Metric:
    """The metric called ``name`` (``pyiqa:<name>`` for any pyiqa metric)."""
    prefix, _, rest = name.partition(":")
    if prefix == "pyiqa" and rest:
        from qbench.metrics.pyiqa_adapter import PyiqaMetric

        return PyiqaMetric(rest, device=device)
    raise UnknownNameError("metric", name, ["pyiqa:<name>"])


__all__ = ["InputTooSmallError", "Metric", "MetricInfo", "create"]
