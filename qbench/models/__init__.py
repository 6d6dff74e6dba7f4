"""Models: architectures by name, training loops, and the zoo of checkpoints with provenance.

* ``qbench.models.build(arch, **kwargs)`` -- a fresh network of a registered architecture;
* ``qbench.models.save(model, Provenance(...))`` / ``qbench.models.load(name)`` -- checkpoints
  with provenance (command, seed, git revision, data fingerprint, metrics, sha256).
"""

from __future__ import annotations

from qbench.models import nets  # noqa: F401  (registers the small classifiers)
from qbench.models.checkpoint import (
    CheckpointError,
    Provenance,
    find,
    load,
    provenance,
    save,
    verify_hash,
)
from qbench.models.registry import archs, build, register

__all__ = ["CheckpointError", "Provenance", "archs", "build", "find", "load", "provenance",
           "register", "save", "verify_hash"]
