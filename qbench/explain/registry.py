"""Explanation methods by name, each with one call shape.

A method is a function ``fn(model, images, target, layer, **options) -> Tensor[N, H, W]``:
``images`` N×3×H×W in [0, 1] on the model's device; ``target`` a LongTensor of N class indices
(classifier) or a callable ``model_output -> Tensor[N]`` (a scalar output such as an IQA
score); ``layer`` the module a CAM-style method reads (``None`` = the method's default).
The map is at input resolution; larger = more evidence *for* the target.

Methods live in one :class:`~qbench.registry.Registry` (entry-point group
``qbench.explainers``); the modules that define the built-in ones are lazy entries below, so
``names()`` and ``info()`` need no import of their code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from qbench.registry import Registry

Method = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    family: str  # "cam", "gradient", "perturbation"
    needs_layer: bool
    differentiable: bool  # the map can sit inside a training loss (create_graph)
    summary: str


REGISTRY: Registry[Method] = Registry(
    "explanation method", group="qbench.explainers",
    info_of=lambda fn: getattr(fn, "method_info", None))

# modules whose import registers the built-in methods
BUILTIN_MODULES = ("cam", "gradients", "cameras", "perturbation", "rise", "robust")
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in BUILTIN_MODULES:
            importlib.import_module(f"qbench.explain.{mod}")


def register(name: str, family: str, needs_layer: bool = False, differentiable: bool = False,
             summary: str = "") -> Callable[[Method], Method]:
    """Decorator registering an explanation method under ``name`` with its metadata."""

    def deco(fn: Method) -> Method:
        first = (fn.__doc__ or "").strip().splitlines()
        info = MethodInfo(name, family, needs_layer, differentiable,
                          summary or (first[0] if first else ""))
        REGISTRY.register(name, fn, info=info)
        return fn

    return deco


def get(name: str) -> tuple[Method, MethodInfo]:
    """The method called ``name`` and its metadata."""
    _load_builtins()
    fn = REGISTRY.get(name)
    info = REGISTRY.info(name)
    if not isinstance(info, MethodInfo):
        info = MethodInfo(name, "plugin", False, False, (fn.__doc__ or "").strip()[:80])
    return fn, info


def names(**filters) -> list[str]:
    """Registered method names, sorted; filters match metadata (``names(family="cam")``)."""
    _load_builtins()
    return sorted(REGISTRY.names(**filters))


def info(name: str) -> MethodInfo:
    return get(name)[1]


def infos() -> list[MethodInfo]:
    return [info(n) for n in names()]
