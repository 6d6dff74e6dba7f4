"""Explanation methods by name, each with one call shape.

A method is a function ``fn(model, images, target, layer, **options) -> Tensor[N, H, W]``:
``images`` N×3×H×W in [0, 1] on the model's device; ``target`` a LongTensor of N class indices
(classifier) or a callable ``model_output -> Tensor[N]`` (a scalar output such as an IQA
score); ``layer`` the module a CAM-style method reads (``None`` = the method's default).
The map is at input resolution; larger = more evidence *for* the target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from qbench.errors import QbenchError

Method = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    family: str  # "cam", "gradient", "perturbation"
    needs_layer: bool
    differentiable: bool  # the map can sit inside a training loss (create_graph)
    summary: str


_METHODS: dict[str, tuple[Method, MethodInfo]] = {}


def register(name: str, family: str, needs_layer: bool = False, differentiable: bool = False,
             summary: str = "") -> Callable[[Method], Method]:
    """Decorator registering an explanation method under ``name``."""

    def deco(fn: Method) -> Method:
        if name in _METHODS and _METHODS[name][0] is not fn:
            raise QbenchError(f"explanation method {name!r} is registered twice")
        doc = summary or (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else summary
        _METHODS[name] = (fn, MethodInfo(name, family, needs_layer, differentiable, doc or ""))
        return fn

    return deco


def get(name: str) -> tuple[Method, MethodInfo]:
    if name not in _METHODS:
        raise QbenchError(f"unknown explanation method {name!r}; known: "
                          f"{', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def methods() -> list[str]:
    return sorted(_METHODS)


def infos() -> list[MethodInfo]:
    return [_METHODS[n][1] for n in methods()]
