"""Image-quality metrics, created by name: ``qbench.metrics.create("pyiqa:ssim")``.

``names()`` lists them, ``info(name)`` reads a metric's declaration without building it, and
``register(name, obj_or_"module:attr")`` adds one. A metric follows :class:`~qbench.metrics.base.Metric`: ``m(images, refs=None)`` returns one
float per image, and ``m.info`` declares kind (FR, NR or task), direction, minimum size,
whether it needs weights and what it was trained on. See :mod:`qbench.metrics.registry` for
how names resolve (pyiqa, built-ins, entry points, ``module:attr``).
"""

from __future__ import annotations

from qbench.metrics.base import InputTooSmallError, Metric, MetricInfo
from qbench.metrics.offline import MissingWeightsError
from qbench.metrics.registry import PluginError, create, info, names, register

__all__ = ["InputTooSmallError", "Metric", "MetricInfo", "MissingWeightsError", "PluginError",
           "create", "info", "names", "register"]
