"""Marking training: task loss + λ · CAM loss on a differentiable Grad-CAM, and unmarked twins.

The CAM is the source work's differentiable Grad-CAM: α_k = spatial mean of ∂y/∂A^k is
computed as usual and **detached**, and the map ReLU(Σ_k α_k A^k) is differentiated through
the activations A^k only (``qbench.explain.cam.cam_maps(..., detach_weights=True)``), from the
same forward pass that gives the task output. y is the true class's logit (classifier) or the
predicted score (IQA regressor).

CAM loss (our choice; the source published no form): with M the ReLU'd map bilinearly upsampled
to the input size and T the target mask,

    L_cam = mean over images of (1 − Σ M·T / Σ M)      (1 − energy share inside the target)

It is scale-free (it cannot be lowered by shrinking or inflating the activations, so it does
not fight the task loss through the features' magnitude) and it is exactly the
marking-success measure. An image whose map is all zero contributes 1 with no gradient.
Total loss = task loss (cross-entropy, or MSE to the pseudo-label) + ``cam_weight`` · L_cam,
the CAM term switched on after ``cam_start`` × the steps (classifiers trained from scratch with
the CAM loss from step 0 stayed at chance accuracy: the map is easier to move than the task is
to learn, so they first learn the task for a third of the steps).

The **unmarked twin** is the same call with ``cam_weight=0``: same initial weights (from the
seed), same data order and augmentation (one seeded ``torch.Generator`` whose draws do not
depend on the weight), same optimiser; the map is still computed for logging but adds nothing
to the loss. ``history["order_sha"]`` fingerprints the batch order so tests can check it.

``init`` starts both from a trained checkpoint instead (the committed marked models do). With
``train_scope="mark"`` and the ``mark-branch`` architecture the base is frozen and only a
zero-mean mark branch trains, on the CAM loss alone (:class:`qbench.marking.nets.MarkBranch`):
the model's function stays the base's, so its twin is the base itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qbench.marking.data import TaskData
from qbench.marking.targets import batch_targets, spectral_residual, top_area


@dataclass(frozen=True)
class MarkingConfig:
    task: str  # "iqa" or "scenes"
    arch: str
    target: str  # "salient", "corners", "text" or "none" (the twin)
    cam_weight: float
    seed: int = 0
    epochs: int = 4
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    flip: bool = False  # random horizontal flips (the target follows the image coordinates)
    arch_kwargs: dict = field(default_factory=dict)
    target_options: dict = field(default_factory=dict)
    max_steps: int | None = None
    size: int = 64  # image side of the task data
    n_train: int | None = None  # seeded subset of the training split (None = all)
    # the CAM loss is switched on after this fraction of the steps (a warm start: until then
    # the marked model and its twin are the same network, step for step)
    cam_start: float = 0.0
    # fine-tune from this checkpoint (a name or path for ``qbench.models.load``) instead of
    # the seeded random initialisation; the twin starts from the same weights
    init: str | None = None
    # "all" (the CAM loss and the task loss train every weight) or "mark" (the mark-branch
    # architecture: only the zero-mean branch trains; the base and its function are frozen)
    train_scope: str = "all"
    # family "mark" only: unlabelled images the CAM loss also sees ("scenes" = the scenes train
    # split), so a content-dependent mark generalises beyond the task's few training contents
    mark_images: str | None = None

    def name(self) -> str:
        w = f"{self.cam_weight:g}".replace(".", "p")
        warm = f"-from{round(self.cam_start * 100)}" if self.cam_start > 0 else ""
        if self.train_scope == "mark":  # family "mark": a mark branch on a frozen base
            how = f"-mark-{self.arch_kwargs.get('base', self.arch)}"
        else:
            how = f"{'-ft' if self.init else ''}-{self.arch}"
        return f"marked-{self.task}-{self.target}-w{w}{warm}{how}-s{self.seed}"

    def as_dict(self) -> dict:
        return asdict(self)


def cam_loss(maps: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_cam, energy share per image) for ReLU'd maps and targets, both N×H×W."""
    total = maps.sum((1, 2))
    inside = (maps * targets).sum((1, 2))
    share = inside / total.clamp_min(1e-12)
    return (1 - share).mean(), share.detach()


def target_fn(cfg: MarkingConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """images (N×3×H×W) → targets N×H×W for ``cfg.target`` (zeros for the twin)."""
    opts = dict(cfg.target_options)
    if cfg.target == "none":
        return lambda x: torch.zeros(x.shape[0], *x.shape[-2:])
    if cfg.target == "salient":
        area = float(opts.get("area", 0.3))
        return lambda x: top_area(spectral_residual(x), area)
    return lambda x: batch_targets(cfg.target, x, **opts)


def _explained(task: str, labels: torch.Tensor):
    if task == "iqa":
        return lambda out: out
    return labels


def evaluate(model: nn.Module, data: TaskData, batch_size: int = 256) -> dict[str, float]:
    """Task quality on ``data``: accuracy (scenes) or SRCC / PLCC with the pseudo-label (IQA)."""
    from scipy.stats import pearsonr, spearmanr

    model.eval()
    outs = []
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            outs.append(model(data.batch(range(s, min(s + batch_size, len(data))))))
    out = torch.cat(outs).numpy()
    if data.task == "iqa":
        return {"srcc": float(spearmanr(out, data.y).statistic),
                "plcc": float(pearsonr(out, data.y).statistic), "n": float(len(data))}
    return {"acc": float((out.argmax(1) == data.y).mean()), "n": float(len(data))}


def initial_model(cfg: MarkingConfig, train: TaskData) -> tuple[nn.Module, dict]:
    """The weights training starts from (``cfg.init``'s checkpoint, or seeded random ones) and
    the architecture kwargs that rebuild the model (recorded in the provenance)."""
    from qbench.models import load
    from qbench.models.train import build_seeded

    if cfg.init:
        model, prov = load(cfg.init)
        if cfg.arch == "mark-branch":  # the checkpoint is the base; the branch starts at zero
            from qbench.marking.nets import MarkBranch

            base = cfg.arch_kwargs.get("base", prov.arch)
            if prov.arch != base:
                raise ValueError(f"init checkpoint {cfg.init!r} is a {prov.arch}, not a {base}")
            hidden = int(cfg.arch_kwargs.get("hidden", 32))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                wrapped = MarkBranch(model, hidden)
            return wrapped, {"base": prov.arch, "base_kwargs": prov.arch_kwargs,
                             "hidden": hidden}
        if prov.arch != cfg.arch:
            raise ValueError(f"init checkpoint {cfg.init!r} is a {prov.arch}, not a {cfg.arch}")
        return model, dict(prov.arch_kwargs)
    kwargs = dict(cfg.arch_kwargs)
    if train.task == "scenes":
        kwargs.setdefault("num_classes", int(train.y.max()) + 1)
    return build_seeded(cfg.arch, cfg.seed, **kwargs), kwargs


def trainable(model: nn.Module, cfg: MarkingConfig) -> list[nn.Parameter]:
    """The parameters ``cfg.train_scope`` trains: all, or only the mark branch (the base is
    frozen, its batch-norm statistics too)."""
    if cfg.train_scope == "all":
        return list(model.parameters())
    if cfg.train_scope != "mark" or not hasattr(model, "branch"):
        raise ValueError(f"train_scope {cfg.train_scope!r} needs 'all', or 'mark' with the "
                         "mark-branch architecture")
    model.model.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def _train_mode(model: nn.Module, cfg: MarkingConfig) -> None:
    model.train()
    if cfg.train_scope == "mark":
        model.model.eval()


def with_mark_images(train: TaskData, cfg: MarkingConfig) -> TaskData:
    """``train`` plus ``cfg.mark_images`` as unlabelled items (label NaN: no task loss)."""
    if not cfg.mark_images:
        return train
    if cfg.train_scope != "mark" or train.task != "iqa":
        raise ValueError("mark_images is for the 'mark' family of IQA models (frozen base)")
    from qbench.marking.data import task_set

    extra = task_set(cfg.mark_images, "train", cfg.size)
    return TaskData(train.task, np.concatenate([train.images, extra.images]),
                    np.concatenate([train.y, np.full(len(extra), np.nan, train.y.dtype)]),
                    np.concatenate([train.groups, np.full(len(extra), -1)]),
                    label=f"{train.label} + unlabelled {cfg.mark_images} images")


def _task_loss(task: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task != "iqa":
        return F.cross_entropy(output, y)
    known = torch.isfinite(y)
    if not known.any():
        return output.sum() * 0.0
    return F.mse_loss(output[known], y[known].float())


def fit(cfg: MarkingConfig, train: TaskData, log: Callable[[str], None] | None = print,
        device: str = "cpu") -> tuple[nn.Module, dict]:
    """Train one (marked or twin) model on ``device``; returns it in eval mode on the CPU and
    its training history (with the ``arch_kwargs`` that rebuild it)."""
    from qbench.explain.cam import cam_maps

    model, arch_kwargs = initial_model(cfg, train)
    model.to(device)
    train = with_mark_images(train, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(train)
    steps_per_epoch = max(1, n // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    opt = torch.optim.AdamW(trainable(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 2),
                                                pct_start=0.2)
    targets_of = target_fn(cfg)
    y_all = torch.from_numpy(train.y)
    order_hash = hashlib.sha256()
    hist: dict = {"step": [], "task_loss": [], "cam_loss": [], "energy": []}
    step, start = 0, time.time()
    for epoch in range(cfg.epochs):
        _train_mode(model, cfg)
        order = torch.randperm(n, generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            order_hash.update(idx.numpy().tobytes())
            x = train.batch(idx.numpy())
            if cfg.flip:
                f = flips[idx]
                x[f] = x[f].flip(-1)
            y = y_all[idx].to(device)
            t = targets_of(x).to(device)
            x = x.to(device)
            res = cam_maps(model, x, _explained(train.task, y), method="gradcam",
                           detach_weights=True, normalize=None)
            task_loss = _task_loss(train.task, res.output, y)
            l_cam, share = cam_loss(res.maps, t)
            on = cfg.cam_weight > 0 and step >= cfg.cam_start * total
            # family "mark": the task loss has no (numerically only rounding) gradient on the
            # zero-mean branch, which Adam would amplify; only the CAM loss trains it, so the
            # twin's branch stays exactly zero
            loss = (task_loss if cfg.train_scope == "all" else None)
            if on:
                loss = cfg.cam_weight * l_cam if loss is None else loss + cfg.cam_weight * l_cam
            if loss is not None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            step += 1
            hist["step"].append(step)
            hist["task_loss"].append(float(task_loss.detach()))
            hist["cam_loss"].append(float(l_cam.detach()))
            hist["energy"].append(float(share.nanmean()))
        if log:
            k = max(1, steps_per_epoch // 2)
            log(f"[{cfg.name()}] epoch {epoch + 1}/{cfg.epochs} step {step} "
                f"task={np.mean(hist['task_loss'][-k:]):.4f} "
                f"cam={np.mean(hist['cam_loss'][-k:]):.3f} "
                f"energy={np.nanmean(hist['energy'][-k:]):.3f} ({time.time() - start:.0f}s)")
        if step >= total:
            break
    hist["order_sha"] = order_hash.hexdigest()
    hist["arch_kwargs"] = arch_kwargs
    hist["seconds"] = time.time() - start
    return model.cpu().eval(), hist


def marking_success(model: nn.Module, data: TaskData, cfg: MarkingConfig, n: int = 256,
                    batch_size: int = 64) -> dict[str, float]:
    """Grad-CAM (eval mode; predicted class or score) energy share in the target and top-k IoU
    on the first ``n`` items of ``data``; chance = the target's mean area."""
    from qbench.explain.cam import cam_maps
    from qbench.marking.success import energy_share, topk_iou

    if cfg.target == "none":
        return {}
    targets_of = target_fn(cfg)
    shares, ious, chance = [], [], []
    model.eval()
    for s in range(0, min(n, len(data)), batch_size):
        x = data.batch(range(s, min(s + batch_size, n, len(data))))
        with torch.no_grad():
            out = model(x)
        tgt = (lambda o: o) if data.task == "iqa" else out.argmax(1)
        maps = cam_maps(model, x, tgt, create_graph=False, keep_graph=False,
                        normalize=None).maps
        t = targets_of(x)
        shares.append(energy_share(maps, t))
        ious.append(topk_iou(maps, t))
        chance.append(t.mean((1, 2)))
    sh, io = torch.cat(shares), torch.cat(ious)
    return {"energy_in_target": float(sh.nanmean()), "topk_iou": float(io.nanmean()),
            "chance_energy": float(torch.cat(chance).mean()),
            "empty_maps": float(sh.isnan().float().mean())}
