"""The base classifier a marked model starts from, named by any model spec.

``load_base(spec)`` returns ``(model, provenance)`` for a zoo name, a ``.pt`` path,
``torchvision:``/``timm:`` names, ``module:attr`` or a named model such as
``efficientnet-lite0`` (through :func:`qbench.models.load`), loaded once per process.
``check_base(spec)`` validates a spec without loading weights (one-line error), ``slug(spec)``
is the spec as it appears in checkpoint names, and ``rebuild_kwargs(prov)`` says how a
checkpoint built on the base is rebuilt in a fresh interpreter.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from torch import nn

from qbench.errors import QbenchError

_LOADED: dict[str, tuple[nn.Module, object]] = {}


def load_base(spec: str):
    """(model in eval mode, provenance) of ``spec``; loaded once per process. The model is
    shared: callers that change it (a mark branch's hook, fine-tuning) load their own copy
    with :func:`fresh_base`."""
    if spec not in _LOADED:
        _LOADED[spec] = fresh_base(spec)
    return _LOADED[spec]


def fresh_base(spec: str):
    """A new copy of ``spec`` (model, provenance)."""
    from qbench.models import load
    from qbench.models.specs import state_sha256

    model, prov = load(spec)
    if not getattr(prov, "sha256", ""):
        prov.sha256 = state_sha256(model)
    if not hasattr(model, "cam_layer"):
        raise QbenchError(f"base {spec!r} has no cam_layer (the module Grad-CAM reads)")
    return model.eval(), prov


def check_base(spec: str) -> None:
    """A one-line error when ``spec`` names no model (nothing is loaded where avoidable)."""
    from qbench.models import archs, names

    if not isinstance(spec, str) or not spec.strip():
        raise QbenchError(f"base must be a model spec (a string), not {spec!r}")
    if spec.endswith(".pt"):
        if not Path(spec).is_file():
            raise QbenchError(f"base checkpoint {spec} does not exist")
        return
    head, sep, rest = spec.partition(":")
    if sep and head in ("torchvision", "timm"):
        if not rest:
            raise QbenchError(f"base {spec!r} names no architecture after {head}:")
        return
    if sep:
        from qbench.registry import import_attr

        try:
            import_attr(spec)
        except Exception as exc:  # RegistryError and friends: one line
            raise QbenchError(f"unknown base {spec!r}: {exc}") from None
        return
    if spec in names() or spec in archs():
        return
    try:  # a named model of qbench.models.specs (when that module exists)
        from qbench.models import info

        info(spec)
        return
    except Exception:
        pass
    import difflib

    close = difflib.get_close_matches(spec, [*names(), *archs()], n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    raise QbenchError(f"unknown base {spec!r}{hint}: not a zoo checkpoint, named model, .pt "
                      "path, torchvision:/timm: name or package.module:attr")


def slug(spec: str) -> str:
    """``spec`` as a file-name-safe part of a checkpoint name; paths and ``=PATH`` suffixes
    keep their stem plus a short hash of the whole spec, so two specs never share a slug."""
    text = spec
    hashed = "/" in spec or "\\" in spec or "=" in spec or spec.endswith(".pt")
    if hashed:
        main, _, path = spec.partition("=")
        text = f"{main}-{Path(path).stem}" if path else Path(main).stem
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "base"
    if hashed:
        s += "-" + hashlib.sha256(spec.encode()).hexdigest()[:6]
    return s


def buildable(arch: str) -> bool:
    """Whether ``qbench.models.build(arch)`` rebuilds the architecture (a registered name, or
    an importable factory/class ``module:attr``)."""
    from qbench.models import archs

    if arch in archs():
        return True
    if ":" not in arch or arch.split(":", 1)[0] in ("torchvision", "timm"):
        return False
    from qbench.registry import import_attr

    try:
        obj = import_attr(arch)
    except Exception:
        return False
    return callable(obj) and not isinstance(obj, nn.Module)


def rebuild_kwargs(spec: str, prov) -> tuple[str, dict]:
    """(arch, arch_kwargs) that rebuild ``spec``'s architecture for a checkpoint whose
    state_dict holds the weights: the base's own when buildable, else ``from-spec``."""
    if buildable(prov.arch):
        return prov.arch, dict(prov.arch_kwargs)
    return "qbench.marking.nets:from_spec", {"spec": spec}
