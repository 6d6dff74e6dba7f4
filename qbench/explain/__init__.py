"""Explanations with one API: ``qbench.explain(model, images, target=None, method="gradcam")``.

Returns an N×H×W float tensor at input resolution. ``target`` is a class index per image
(default: the model's predicted class) or, for a model with a scalar output (an IQA
regressor), ``None`` / a callable ``output -> Tensor[N]``: the map then explains the *score
itself* (evidence that raises the predicted quality). ``qbench.explain.names()`` lists the
methods; ``qbench.explain.info(name)`` describes one; ``register`` adds one.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import torch
from torch import nn

from qbench.explain.registry import MethodInfo, get, info, infos, names, register

Target = torch.Tensor | int | list[int] | Callable[[torch.Tensor], torch.Tensor] | None


def resolve_target(model: nn.Module, images: torch.Tensor, target: Target
                   ) -> torch.Tensor | Callable[[torch.Tensor], torch.Tensor]:
    """Class indices as a LongTensor[N] (predicted class when ``None`` for a classifier), or a
    callable for scalar-output models."""
    if callable(target):
        return target
    if target is None:
        with torch.no_grad():
            out = model(images)
        if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1):
            return lambda o: o.reshape(o.shape[0], -1)[:, 0]
        return out.argmax(1)
    t = torch.as_tensor(target, dtype=torch.long, device=images.device).reshape(-1)
    return t.expand(images.shape[0]).clone() if t.numel() == 1 else t


def explain(model: nn.Module, images: torch.Tensor, target: Target = None,
            method: str = "gradcam", layer: nn.Module | str | None = None,
            **options) -> torch.Tensor:
    """The ``method`` map of ``model`` for ``images`` (N×3×H×W in [0, 1]) → N×H×W."""
    fn, _ = get(method)
    if images.ndim != 4:
        raise ValueError(f"images must be N×3×H×W, got shape {tuple(images.shape)}")
    param = next(model.parameters(), None)  # maps come back on the model's device
    images = images if param is None else images.to(param.device)
    return fn(model, images, resolve_target(model, images, target), layer, **options)


class _CallableModule(types.ModuleType):
    def __call__(self, model, images, target=None, method="gradcam", layer=None, **options):
        return explain(model, images, target, method, layer, **options)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["MethodInfo", "explain", "info", "infos", "names", "register", "resolve_target"]
