"""Models: one resolver for every model spec, architectures by name, training, and the zoo.

* ``qbench.models.load(spec, map_location="cpu", layer=None) -> (model, Provenance)`` -- any
  model spec: a zoo name (``scenes-vgg-s-s0``), a ``.pt`` checkpoint path,
  ``torchvision:ARCH[=PATH]``, ``timm:NAME[=PATH]``, ``package.module:attr`` (a factory, class
  or instance) or a named model (``efficientnet-lite0``, ImageNet-1k, offline). Every model is
  in eval mode, takes Nx3xHxW images in [0, 1], returns logits and has ``cam_layer``; its
  provenance's ``extra`` says ``spec``, ``source``, ``classes``, ``num_classes``,
  ``input_size``, ``cam_layer``, ``weights`` and ``normalization``
  (:mod:`qbench.models.specs`);
* ``names()`` -- zoo checkpoints and named models; ``info(spec)`` -- the provenance without
  loading weights; ``check_classes`` / ``check_input_size`` -- one-line errors for a model
  that does not fit a dataset;
* checkpoints with provenance (command, seed, git revision, data fingerprint, metrics,
  sha256): ``save(model, Provenance(...))`` adds one to ``$QBENCH_HOME/zoo``, ``find(name)``
  locates it, ``provenance(path)`` / ``verify_hash(path)`` read it;
* ``build(arch, **kwargs)`` -- a fresh network of a registered architecture (``archs()``
  lists them, ``register(name)`` adds one).
"""

from __future__ import annotations

from qbench.models import nets  # noqa: F401  (registers the small classifiers)
from qbench.models.checkpoint import (
    CheckpointError,
    Provenance,
    find,
    provenance,
    save,
    verify_hash,
)
from qbench.models.registry import build, register
from qbench.models.registry import names as archs
from qbench.models.specs import (
    ModelSpecError,
    check_classes,
    check_input_size,
    info,
    load,
    names,
)

__all__ = ["CheckpointError", "ModelSpecError", "Provenance", "archs", "build",
           "check_classes", "check_input_size", "find", "info", "load", "names", "provenance",
           "register", "save", "verify_hash"]
