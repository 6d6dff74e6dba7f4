"""qbench: do image-quality metrics predict DNN behaviour, how good is each metric, and can
explanation maps be trusted? See README.md for the tour.

The one obvious way to do each thing:

* ``qbench.data.load(name, ...)`` -- a dataset (embedded ``scenes``/``refs`` or a real release);
* ``qbench.corrupt(images, name, severity, seed=0)`` -- a controlled corruption;
* ``qbench.metrics.create(name)`` -- a quality metric (``pyiqa:<name>`` for pyiqa's);
* ``qbench.store.Store(path)`` and ``qbench.engine.score(...)`` -- score and store results.
"""

from __future__ import annotations

from qbench import corrupt, data, errors, metrics

__version__ = "0.1.0"
__all__ = ["__version__", "corrupt", "data", "errors", "metrics"]
