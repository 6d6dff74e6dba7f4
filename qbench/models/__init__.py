"""Models: architectures by name, training loops, and the zoo of checkpoints with provenance.

* ``qbench.models.names()`` / ``info(name)`` / ``load(name)`` -- checkpoints by name (the
  shipped zoo and the user's ``$QBENCH_HOME/zoo``) with their provenance (command, seed, git
  revision, data fingerprint, metrics, sha256); ``save(model, Provenance(...))`` adds one;
* ``qbench.models.build(arch, **kwargs)`` -- a fresh network of a registered architecture
  (``archs()`` lists them, ``register(name)`` adds one).
"""

from __future__ import annotations

from qbench.models import nets  # noqa: F401  (registers the small classifiers)
from qbench.models.checkpoint import (
    CheckpointError,
    Provenance,
    find,
    info,
    load,
    names,
    provenance,
    save,
    verify_hash,
)
from qbench.models.registry import build, register
from qbench.models.registry import names as archs

__all__ = ["CheckpointError", "Provenance", "archs", "build", "find", "info", "load", "names",
           "provenance", "register", "save", "verify_hash"]
