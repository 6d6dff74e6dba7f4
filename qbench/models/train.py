"""Deterministic supervised training of the small classifiers on a ClassificationSet.

Same (architecture, seed, data, hyper-parameters, device, thread count) -> the same weights,
byte for byte on CPU: the initial weights come from ``torch.manual_seed(seed)`` inside a forked
RNG state (the caller's global RNG is untouched), and the data order and the flips come from one
seeded ``torch.Generator``. Optimiser: AdamW with a one-cycle learning-rate schedule.
Augmentation: a random horizontal flip (every ``scenes`` class is closed under it) and, when
``shift > 0``, a random translation by up to ``shift`` pixels per axis (reflect padding, then a
crop back to the input size); the shifts are drawn only when enabled, so configurations without
them reproduce their earlier weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qbench.data.base import ClassificationSet, uint8_to_tensor
from qbench.models.registry import build


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    flip: bool = True
    shift: int = 0  # random translation of up to this many pixels (0 = off)
    max_steps: int | None = None  # stop early after this many steps (tests, smoke runs)


def build_seeded(arch: str, seed: int, **arch_kwargs) -> nn.Module:
    """A fresh ``arch`` whose initial weights depend only on ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(arch, **arch_kwargs)


def random_shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, shift: int
                 ) -> torch.Tensor:
    """Translate each image of ``x`` (N×C×H×W) by (dy, dx) ∈ [-shift, shift]², reflect-padded."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (shift, shift, shift, shift), mode="reflect")
    return torch.stack([padded[i, :, shift + int(a):shift + int(a) + h,
                               shift + int(b):shift + int(b) + w]
                        for i, (a, b) in enumerate(zip(dy, dx, strict=True))])


@torch.no_grad()
def predict(model: nn.Module, dataset: ClassificationSet, batch_size: int = 256,
            device: str = "cpu") -> np.ndarray:
    """Logits (N x classes, float32 numpy) of ``model`` on every image of ``dataset``."""
    model.eval().to(device)
    out = []
    for s in range(0, len(dataset), batch_size):
        x = dataset.batch(range(s, min(s + batch_size, len(dataset)))).to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def accuracy(model: nn.Module, dataset: ClassificationSet, device: str = "cpu") -> float:
    """Top-1 accuracy (fraction) of ``model`` on ``dataset``."""
    logits = predict(model, dataset, device=device)
    return float((logits.argmax(1) == dataset.labels).mean())


def train_classifier(arch: str, seed: int, epochs: int, train: ClassificationSet,
                     val: ClassificationSet | None = None,
                     test: ClassificationSet | None = None,
                     arch_kwargs: dict | None = None, config: TrainConfig | None = None,
                     device: str = "cpu", log: Callable[[str], None] | None = print
                     ) -> tuple[nn.Module, dict[str, float]]:
    """Train ``arch`` on ``train``; returns the model (eval mode, on CPU) and its metrics.

    Metrics: ``train_loss`` (mean of the last epoch), ``val_acc`` / ``test_acc`` (fractions in
    [0, 1], when those sets are given), ``epochs``, ``steps`` and ``seconds``.
    """
    cfg = config or TrainConfig(epochs=epochs)
    if cfg.epochs != epochs:
        cfg = TrainConfig(**{**cfg.__dict__, "epochs": epochs})
    if train.array is None:
        raise ValueError("train_classifier needs an in-memory dataset (ClassificationSet.array)")
    n_classes = len(train.classes) or int(train.labels.max()) + 1
    kwargs = {"num_classes": n_classes, **(arch_kwargs or {})}
    model = build_seeded(arch, seed, **kwargs).to(device)
    gen = torch.Generator().manual_seed(seed)
    images = torch.from_numpy(np.ascontiguousarray(train.array))
    labels = torch.from_numpy(np.asarray(train.labels, dtype=np.int64))
    n = len(labels)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch
    total = steps_per_epoch * epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 2),
                                                pct_start=0.2)
    step, start, metrics = 0, time.time(), {}
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        if cfg.shift:
            shifts = torch.randint(-cfg.shift, cfg.shift + 1, (2, n), generator=gen)
        losses = []
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = uint8_to_tensor(images[idx].numpy())
            if cfg.flip:
                f = flips[idx]
                x[f] = x[f].flip(-1)
            if cfg.shift:
                x = random_shift(x, shifts[0, idx], shifts[1, idx], cfg.shift)
            x, y = x.to(device), labels[idx].to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
        metrics["train_loss"] = float(np.mean(losses)) if losses else float("nan")
        if val is not None:
            metrics["val_acc"] = accuracy(model, val, device)
        if log:
            shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            log(f"[{arch} seed {seed}] epoch {epoch + 1}/{epochs} step {step} {shown} "
                f"({time.time() - start:.0f}s)")
        if step >= total:
            break
    if test is not None:
        metrics["test_acc"] = accuracy(model, test, device)
    metrics.update(epochs=float(epochs), steps=float(step), seconds=time.time() - start)
    return model.cpu().eval(), metrics
