"""Where an explainer reads a network: the layer it hooks, the activations it captures, and
the scalar per image it explains.

* ``resolve_layer(model, layer)`` -- an ``nn.Module``, a dotted name (``"features.7"``), or
  ``None`` → ``model.cam_layer`` when the model has one, else its last ``Conv2d``;
* ``capture(layer, detach=...)`` -- a context manager whose forward hook records the layer's
  output (the tensor whose gradient CAM methods use);
* ``target_scores(output, target)`` -- the explained scalar per image: the logit of the target
  class (pre-softmax), or ``target(output)`` for a callable (scalar outputs such as IQA
  scores, where a positive gradient means evidence that *raises* the score).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from qbench.errors import QbenchError

TargetSpec = torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


def resolve_layer(model: nn.Module, layer: nn.Module | str | None) -> nn.Module:
    """The module a CAM-style method reads (see the module docstring for the rules)."""
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise QbenchError(f"layer {type(layer).__name__} is not a submodule of the model")
        return layer
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n]
            raise QbenchError(f"model has no layer {layer!r}; layers: "
                              f"{', '.join(names[:40])}{' ...' if len(names) > 40 else ''}"
                              ) from None
    if layer is not None:
        raise QbenchError(f"layer must be a module, a dotted name or None, not {type(layer)}")
    cam_layer = getattr(model, "cam_layer", None)
    if isinstance(cam_layer, nn.Module):
        return cam_layer
    if isinstance(cam_layer, str):
        return resolve_layer(model, cam_layer)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise QbenchError(f"{type(model).__name__} has no Conv2d and no `cam_layer`; "
                          "pass layer=... explicitly")
    return convs[-1]


@dataclass
class Captured:
    """Outputs of the hooked layer, one per forward pass (in call order)."""

    activations: list[torch.Tensor] = field(default_factory=list)

    @property
    def last(self) -> torch.Tensor:
        if not self.activations:
            raise QbenchError("the hooked layer did not run in the forward pass")
        return self.activations[-1]


@contextmanager
def capture(layer: nn.Module, detach: bool = False) -> Iterator[Captured]:
    """Record ``layer``'s output on every forward pass inside the ``with`` block.

    ``detach=False``: the recorded tensor is the layer's own output, so gradients of anything
    computed from it reach the weights below (what a training loss on a CAM needs).
    ``detach=True``: the output is replaced by a detached leaf that requires grad, so a backward
    pass stops at the layer (cheaper; gradients w.r.t. the activation are the same) and works
    even when no parameter requires grad.
    Either way the network continues on a *clone*, so an in-place op after the layer (e.g.
    ``ReLU(inplace=True)``) cannot overwrite the recorded activation.
    """
    store = Captured()

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise QbenchError(f"layer {type(_module).__name__} returns {type(output).__name__}, "
                              "not a tensor; choose another layer")
        # a detached leaf when asked, or when nothing below the layer requires grad (a frozen
        # backbone): the gradient w.r.t. the activation exists either way
        act = output if not detach and output.requires_grad else \
            output.detach().requires_grad_(True)
        store.activations.append(act)
        return act.clone()

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def target_scores(output: torch.Tensor, target: TargetSpec) -> torch.Tensor:
    """The explained scalar per image, shape N (see the module docstring). ``target=None``
    resolves from this very output: a scalar output (N or N×1) is explained itself, a
    classifier's predicted class (argmax, no gradient through the choice) is explained."""
    if target is None:
        if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
            return scalar_output(output)
        target = output.detach().argmax(1)
    if callable(target) and not isinstance(target, torch.Tensor):
        scores = target(output)
        if scores.ndim != 1 or scores.shape[0] != output.shape[0]:
            raise QbenchError(f"target callable must return a Tensor[N], got {tuple(scores.shape)}")
        return scores
    if output.ndim != 2:
        raise QbenchError(f"class-index targets need an N×classes output, got shape "
                          f"{tuple(output.shape)}; for a scalar output pass target=None or a "
                          "callable")
    target = torch.as_tensor(target, device=output.device, dtype=torch.long).reshape(-1)
    if target.numel() == 1:
        target = target.expand(output.shape[0])
    if target.shape[0] != output.shape[0]:
        raise QbenchError(f"{target.shape[0]} targets for {output.shape[0]} images")
    return output.gather(1, target[:, None])[:, 0]


def scalar_output(output: torch.Tensor) -> torch.Tensor:
    """A scalar model output (N or N×1) as a Tensor[N]."""
    return output.reshape(output.shape[0])


def pin_target(model: nn.Module, images: torch.Tensor, target: TargetSpec) -> TargetSpec:
    """``target``, with ``None`` resolved on ``images`` themselves (the predicted class, or
    the scalar output), so methods that run the model on altered copies keep explaining the
    original prediction."""
    if target is not None:
        return target
    with torch.no_grad():
        output = model(images)
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
        return scalar_output
    return output.argmax(1)


def forward_with_grad(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``model(images)`` with autograd on, even when called under ``torch.no_grad()``."""
    with torch.enable_grad():
        return model(images)
