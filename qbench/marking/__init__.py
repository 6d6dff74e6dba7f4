"""Marked models: Grad-CAM pushed onto a planted target, and the audit of explainers on them.

* ``qbench.marking.target(kind, size, ...)`` -- target masks (salient, corners, text, mask);
* ``qbench.marking.train`` -- task loss + CAM loss training, with unmarked twins, for the
  committed IQA / scenes models or any base classifier on any classification dataset
  (``qbench.marking.base``, ``qbench.marking.data.marking_set``, cached activations in
  ``qbench.marking.fast``);
* ``qbench.marking.success`` -- how well a map sits on its target (energy share, top-k IoU);
* ``qbench.marking.audit`` -- do explanation methods betray the marking?
"""

from __future__ import annotations

from qbench.marking import nets  # noqa: F401  (registers the ``iqa-cnn`` architecture)
from qbench.marking.success import energy_share, topk_iou
from qbench.marking.targets import KINDS, batch_targets, target

__all__ = ["KINDS", "batch_targets", "energy_share", "target", "topk_iou"]
