"""Image-quality metrics, created by name: ``qbench.metrics.create("pyiqa:ssim")``.

A metric follows :class:`~qbench.metrics.base.Metric`: ``m(images, refs=None)`` returns one
float per image, and ``m.info`` declares kind (FR, NR or task), direction, minimum size,
whether it needs weights and what it was trained on. See :mod:`qbench.metrics.registry` for
how names resolve (pyiqa, built-ins, entry points, ``module:attr``).
"""

from __future__ import annotations

from qbench.metrics.base import InputTooSmallError, Metric, MetricInfo
from qbench.metrics.offline import MissingWeightsError
from qbench.metrics.registry import PluginError, create, names

__all__ = ["InputTooSmallError", "Metric", "MetricInfo", "MissingWeightsError", "PluginError",
           "create", "names"]
