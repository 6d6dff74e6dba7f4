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
    callable for scalar-output models. An explicit target must be integers (one, or one per
    image) inside the model's classes: 2.7, True or an index past the last class is refused with
    one line, never truncated. The model runs in eval mode and is left in the mode it was in."""
    import numbers

    from qbench.errors import InvalidInputError

    if callable(target):
        return target
    n = images.shape[0]
    t = None
    if target is not None:
        shown = f"{type(target).__name__} {target!r}".replace("\n", " ")[:80]
        refused = InvalidInputError(f"target must be a class index (an integer) or one per "
                                    f"image, got {shown}")
        if isinstance(target, torch.Tensor) or hasattr(target, "__array__"):
            t = torch.as_tensor(target)
            if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
                raise refused
        else:
            flat = list(target) if isinstance(target, list | tuple) else [target]
            if not flat or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                   for v in flat):
                raise refused
            t = torch.tensor([int(v) for v in flat], dtype=torch.long)
        t = t.detach().to(images.device, torch.long).reshape(-1)
        if t.numel() not in (1, n):
            raise InvalidInputError(f"target has {t.numel()} entries for {n} images (give one, "
                                    "or one per image)")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            out = model(images if t is None else images[:1])  # one image tells the classes
    finally:
        for m, mode in modes:
            m.training = mode
    scalar = out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1)
    if t is None:
        if scalar:
            return lambda o: o.reshape(o.shape[0], -1)[:, 0]
        return out.argmax(1)
    classes = 1 if scalar else int(out.shape[1])
    bad = t[(t < 0) | (t >= classes)]
    if bad.numel():
        raise InvalidInputError(f"target {int(bad[0])} is outside the model's {classes} "
                                f"class{'es' if classes > 1 else ''} (0..{classes - 1})")
    return t.expand(n).clone() if t.numel() == 1 else t


def explain(model: nn.Module, images: torch.Tensor, target: Target = None,
            method: str = "gradcam", layer: nn.Module | str | None = None,
            **options) -> torch.Tensor:
    """The ``method`` map of ``model`` for ``images`` (N×3×H×W in [0, 1]) → N×H×W.

    The model is explained in eval mode (as it predicts: BatchNorm statistics and dropout do
    not change the map, or the model) and handed back unchanged: each module's train/eval mode,
    each parameter's ``requires_grad`` and ``.grad`` are restored. Gradient methods need
    autograd, so a call inside ``torch.inference_mode()`` is refused with one line."""
    from qbench.errors import InvalidInputError

    fn, _ = get(method)
    if images.ndim != 4:
        raise ValueError(f"images must be N×3×H×W, got shape {tuple(images.shape)}")
    if torch.is_inference_mode_enabled():
        raise InvalidInputError("explain needs autograd but was called inside "
                                "torch.inference_mode(); call it outside (torch.no_grad() "
                                "around it is fine)")
    param = next(model.parameters(), None)  # maps come back on the model's device
    images = images if param is None else images.to(param.device)
    modes = [(m, m.training) for m in model.modules()]
    kept = [(p, p.requires_grad, None if p.grad is None else p.grad.detach().clone())
            for p in model.parameters()]
    model.eval()
    try:
        return fn(model, images, resolve_target(model, images, target), layer, **options)
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag, grad in kept:
            p.requires_grad_(flag)
            p.grad = grad


class _CallableModule(types.ModuleType):
    def __call__(self, model, images, target=None, method="gradcam", layer=None, **options):
        return explain(model, images, target, method, layer, **options)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["MethodInfo", "explain", "info", "infos", "names", "register", "resolve_target"]
