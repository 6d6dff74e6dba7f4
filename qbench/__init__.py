"""qbench: do image-quality metrics predict DNN behaviour, how good is each metric, and can
explanation maps be trusted? See README.md for the tour.

The one obvious way to do each thing:

* ``qbench.data.load(name, ...)`` -- a dataset (embedded ``scenes``/``refs`` or a real release);
* ``qbench.corrupt(images, name, severity, seed=0)`` -- a controlled corruption;
* ``qbench.metrics.create(name)`` -- a quality metric (``pyiqa:<name>`` for pyiqa's);
* ``qbench.explain(model, images, target=None, method="gradcam")`` -- an explanation map;
* ``qbench.models.load(name)`` -- a zoo checkpoint with its provenance;
* ``qbench.store.Store(path)`` and ``qbench.engine.score(...)`` -- score and store results
  (``engine="ray"`` on a Ray cluster);
* a study: ``python studies/<name>.py --preset quick|full`` (see README.md).
"""

from __future__ import annotations

from qbench import corrupt, data, engine, errors, explain, metrics, models, store

__version__ = "0.1.0"
__all__ = ["__version__", "corrupt", "data", "engine", "errors", "explain", "metrics", "models",
           "store"]
