"""Mark-branch training on cached activations: a frozen large base costs one pass per image.

With the base frozen (family ``mark``), everything below the CAM layer is fixed per image: the
CAM layer's input ``I`` and output ``O`` are computed once for every training image and, with
``flip``, its mirror image (the loop's only augmentation, so the pair covers every view it can
draw). The mark branch then trains on them: the marked activations are
``A = O + mark(I, O)`` (:meth:`MarkBranch.mark`, the hook's own code).

Grad-CAM's channel weights α_k = mean over (h, w) of ∂y/∂A_k are detached in the CAM loss. For
a head that reads the CAM layer only through its global average (GAP → anything: a linear
layer, an MLP), ∂y/∂A_k(h, w) = g'_k(mean A) / (h·w) with mean A = mean O (the mark has zero
mean), so α is the same for the marked model and the base and is cached too; it is computed by
autograd through the model's own head (a forward with the CAM layer's output replaced by a leaf
that requires grad), so no head is hard-wired. :meth:`CachedMarking.build` checks that
assumption on the first batch by perturbing the CAM layer's output with a zero-mean pattern:
the logits and α must not move. If they do, it returns None and training runs the full model.

The map is then ``upsample(ReLU(Σ_k α_k A_k))``, exactly what
``cam_maps(..., detach_weights=True, normalize=None)`` computes from a forward pass; the task
output is the cached logits (the marked model's function is the base's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from qbench.explain.cam import upsample_maps
from qbench.marking.data import TaskData

_CACHE: dict = {}  # one per process: the twin and every target of a base share it


@dataclass
class CachedMarking:
    """Cached CAM-layer tensors of every (image, view) of a training set (view 1 = mirror)."""

    model: nn.Module  # the MarkBranch being trained
    inputs: torch.Tensor  # N×V×C_in×h×w
    outputs: torch.Tensor  # N×V×K×h×w
    alpha: torch.Tensor  # N×V×K (Grad-CAM weights of the explained class / score)
    logits: torch.Tensor  # N×V×C (or N×V for a scalar output)
    size: tuple[int, int]  # image size (maps are upsampled to it)
    seconds: float = 0.0

    @staticmethod
    def build(model: nn.Module, cfg, train: TaskData, device: str = "cpu",
              log: Callable[[str], None] | None = print, batch_size: int = 16
              ) -> CachedMarking | None:
        """The cache for ``model`` (a MarkBranch) on ``train``; None when the base's head is
        not global-average-pooled (the caller then trains the full model)."""
        if not hasattr(model, "branch") or cfg.train_scope != "mark":
            raise ValueError("cached training is for the mark family (mark-branch, "
                             "train_scope='mark')")
        key = (cfg.init, repr(sorted(cfg.arch_kwargs.items())), train.fingerprint(),
               cfg.flip, train.teacher is not None, str(device), cfg.cam_classes, cfg.seed
               if cfg.cam_classes else None)
        seconds = 0.0  # spent here (0 when an earlier model of this process built it)
        if key not in _CACHE:
            start = time.time()
            _CACHE.clear()  # one base at a time: the tensors are large
            _CACHE[key] = _compute(model, train, cfg.flip, device, batch_size,
                                   cfg.cam_classes, cfg.seed)
            seconds = time.time() - start
            if log:
                state = "cached" if _CACHE[key] is not None else \
                    "head is not global-average-pooled: training the full model"
                log(f"[{cfg.name()}] CAM-layer cache of {len(train)} images × "
                    f"{1 + cfg.flip} views: {state} ({seconds:.0f}s)")
        tensors = _CACHE[key]
        if tensors is None:
            return None
        return CachedMarking(model, **tensors, seconds=seconds)

    def forward(self, idx: torch.Tensor, flipped: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(task output, Grad-CAM maps N×H×W, differentiable in the branch) of items ``idx``
        shown mirrored where ``flipped``."""
        view = flipped.long() if self.inputs.shape[1] > 1 else torch.zeros_like(idx)
        cam_in, out = self.inputs[idx, view], self.outputs[idx, view]
        acts = out + self.model.mark(cam_in, out)
        alpha = self.alpha[idx, view]
        if alpha.ndim == 2:
            raw = (alpha[:, :, None, None] * acts).sum(1)
            return self.logits[idx, view], upsample_maps(raw.clamp(min=0), self.size)
        raw = torch.einsum("nck,nkhw->nchw", alpha, acts)  # the explained class, then extras
        maps = upsample_maps(raw.flatten(0, 1).clamp(min=0), self.size)
        return self.logits[idx, view], maps.view(*raw.shape[:2], *self.size)


def _scores(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1):
        return output.reshape(output.shape[0], -1)[:, 0]  # a scalar output explains itself
    return output.gather(1, y.long().view(-1, 1))[:, 0]


def _head_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, perturb=None,
               extra: torch.Tensor | None = None):
    """(CAM-layer input, output, α, logits) with autograd through the head only; α is N×K,
    or N×(1+E)×K with ``extra`` classes (N×E) explained after ``y``."""
    seen: dict = {}

    def hook(module, inputs, output):
        seen["in"] = inputs[0].detach()
        seen["out"] = output.detach()
        act = output.detach() if perturb is None else output.detach() + perturb(output)
        seen["act"] = act.requires_grad_(True)
        return seen["act"].clone()  # an in-place op after the layer cannot touch the leaf

    base = model.model
    handle = base.cam_layer.register_forward_hook(hook)
    model.marking = False
    try:
        with torch.enable_grad():
            logits = base(x)
            classes = [y] if extra is None else [y, *extra.T]
            alphas = []
            for k, c in enumerate(classes):
                (grads,) = torch.autograd.grad(_scores(logits, c).sum(), seen["act"],
                                               retain_graph=k < len(classes) - 1)
                alphas.append(grads.mean((2, 3)))
    finally:
        handle.remove()
        model.marking = True
    alpha = alphas[0] if extra is None else torch.stack(alphas, 1)
    return seen["in"], seen["out"], alpha, logits.detach()


def _pooled_head(model: nn.Module, x: torch.Tensor, y: torch.Tensor, out: torch.Tensor,
                 alpha: torch.Tensor, logits: torch.Tensor) -> bool:
    """Does the head read the CAM layer only through its spatial mean? A zero-mean
    perturbation of its output must leave the logits and α unchanged."""
    gen = torch.Generator().manual_seed(0)

    def perturb(o):
        p = torch.randn(o.shape, generator=gen).to(o) * (o.abs().mean() + 1.0)
        return p - p.mean((-2, -1), keepdim=True)

    _, _, alpha2, logits2 = _head_pass(model, x, y, perturb)
    scale = logits.abs().max().clamp_min(1.0)
    a_scale = alpha.abs().max().clamp_min(1e-12)
    return bool((logits2 - logits).abs().max() <= 1e-4 * scale
                and (alpha2 - alpha).abs().max() <= 1e-4 * a_scale)


def _compute(model: nn.Module, train: TaskData, flip: bool, device: str, batch_size: int,
             cam_classes: int = 0, seed: int = 0) -> dict | None:
    base = model.model
    gen = torch.Generator().manual_seed(seed)
    states = [(p, p.requires_grad) for p in base.parameters()]
    was_training = base.training
    base.eval().requires_grad_(False)
    try:
        parts: dict[str, list] = {"inputs": [], "outputs": [], "alpha": [], "logits": []}
        for s in range(0, len(train), batch_size):
            idx = torch.arange(s, min(s + batch_size, len(train)))
            x = train.batch(idx.numpy()).to(device)
            views = []
            for mirrored in ([False, True] if flip else [False]):
                f = torch.full((len(idx),), mirrored)
                y = train.labels_for(idx.numpy(), f).to(device)
                xv = x.flip(-1) if mirrored else x
                if s == 0 and not mirrored:
                    res = _head_pass(model, xv[:2], y[:2])
                    if not _pooled_head(model, xv[:2], y[:2], *res[1:]):
                        return None
                extra = None
                if cam_classes:
                    n_out = res[3].shape[1] if res[3].ndim == 2 else 1
                    extra = torch.randint(0, n_out, (len(idx), cam_classes), generator=gen)
                res = _head_pass(model, xv, y, extra=None if extra is None else extra.to(device))
                views.append(res)
            for k, name in enumerate(("inputs", "outputs", "alpha", "logits")):
                parts[name].append(torch.stack([v[k] for v in views], 1))
        out = {k: torch.cat(v) for k, v in parts.items()}
        out["size"] = tuple(train.images.shape[1:3])
        return out
    finally:
        for p, state in states:
            p.requires_grad_(state)
        base.train(was_training)
