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

Any classifier: ``task="classify"`` marks the base ``init`` (any model spec of
``qbench.models.load``: a zoo name, ``.pt`` path, ``torchvision:``/``timm:`` name,
``module:attr`` or ``efficientnet-lite0``) on ``dataset`` (``qbench.marking.data.marking_set``).
With ``labels="clean-prediction"`` the explained class is the base's clean top-1 on the image as
shown (mirrored or not) and the task loss is KL(softmax(base(x)) ‖ softmax(model(x))) against
the base's cached clean logits (distillation from the unmarked base), so no labels are needed
and quality is top-1 agreement. ``cache=True`` trains the mark family on cached CAM-layer
activations (:mod:`qbench.marking.fast`); ``train_scope="last:K"`` fine-tunes only the last K
parameter-owning modules of a large base (the model stays in eval mode: frozen BN statistics,
no dropout).
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
    # task "classify" (any base classifier ``init`` on any classification ``dataset``):
    dataset: str | None = None
    split: str = "train"  # marking split
    test_split: str = "test"  # quality, marking success and audit split
    data_options: dict = field(default_factory=dict)  # for qbench.data.load (root, per_photo)
    test_data_options: dict = field(default_factory=dict)  # extra options, test split only
    labels: str = "dataset"  # or "clean-prediction" (the base's clean top-1; distillation)
    # family "mark" only: train the branch on cached CAM-layer inputs/outputs of the frozen
    # base (each image and its mirror computed once) instead of running the base every step
    cache: bool = False
    # family "mark" with ``cache``: the CAM loss also explains this many seeded random classes
    # per image view (a class-agnostic mark: it then reaches test images whose predicted class
    # the few training photographs never showed)
    cam_classes: int = 0

    def name(self) -> str:
        w = f"{self.cam_weight:g}".replace(".", "p")
        warm = f"-from{round(self.cam_start * 100)}" if self.cam_start > 0 else ""
        if self.task == "classify":
            return self._classify_name(w, warm)
        if self.train_scope == "mark":  # family "mark": a mark branch on a frozen base
            how = f"-mark-{self.arch_kwargs.get('base', self.arch)}"
        else:
            how = f"{'-ft' if self.init else ''}-{self.arch}"
        return f"marked-{self.task}-{self.target}-w{w}{warm}{how}-s{self.seed}"

    def _classify_name(self, w: str, warm: str) -> str:
        """marked-<dataset><size>[-<data hash>]-<base>[-cp]-<target>-w<λ>-<family>-s<seed>:
        the base and dataset are in the name, so it never collides with the zoo's."""
        import json

        from qbench.marking.base import slug

        defaults = {"split": "train", "test_split": "test", "data_options": {},
                    "test_data_options": {}, "n_train": None}
        data = {k: getattr(self, k) for k, v in defaults.items() if getattr(self, k) != v}
        tag = f"{self.dataset}{self.size}"
        if data:
            digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode())
            tag += f"-{digest.hexdigest()[:6]}"
        if self.train_scope == "mark":
            fam = "mark"
        elif self.init:
            fam = "ft" + (f"-last{self.train_scope.split(':')[1]}"
                          if self.train_scope.startswith("last:") else "")
        else:
            fam = f"scratch-{self.arch}"
        base = slug(self.init or self.arch)
        cp = "-cp" if self.labels == "clean-prediction" else ""
        return f"marked-{tag}-{base}{cp}-{self.target}-w{w}{warm}-{fam}-s{self.seed}"

    def task_label(self) -> str:
        """The task as tables and the audit name it: iqa, scenes, or <base>@<dataset>."""
        if self.task != "classify":
            return self.task
        from qbench.marking.base import slug

        return f"{slug(self.init or self.arch)}@{self.dataset}"

    def ground_truth(self) -> str:
        """What task quality is measured against."""
        if self.task == "iqa":
            return "pyiqa:ssim pseudo-label (full-reference, not human MOS)"
        if self.labels == "clean-prediction":
            return f"clean top-1 prediction of {self.init} (agreement)"
        return f"{self.dataset or self.task} class label (accuracy)"

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
    """Task quality on ``data``: accuracy (scenes, dataset labels), top-1 agreement with the
    base's clean prediction (labels "clean-prediction") or SRCC / PLCC with the pseudo-label
    (IQA)."""
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
    key = "agreement" if data.teacher is not None else "acc"
    return {key: float((out.argmax(1) == data.y).mean()), "n": float(len(data))}


def checkpoint_arch(cfg: MarkingConfig) -> str:
    """The architecture a trained ``cfg`` is saved as (rebuilt from on load)."""
    if cfg.task != "classify" or cfg.arch == "mark-branch" or not cfg.init:
        return cfg.arch
    from qbench.marking.base import load_base, rebuild_kwargs

    return rebuild_kwargs(cfg.init, load_base(cfg.init)[1])[0]


def _classify_initial(cfg: MarkingConfig) -> tuple[nn.Module, dict]:
    """Task "classify": a fresh copy of the base ``cfg.init`` (any model spec), wrapped in a
    mark branch for the ``mark-branch`` architecture."""
    from qbench.marking.base import fresh_base, rebuild_kwargs

    model, prov = fresh_base(cfg.init)
    arch, kwargs = rebuild_kwargs(cfg.init, prov)
    if cfg.arch != "mark-branch":
        return model, kwargs
    from qbench.marking.nets import MarkBranch

    hidden = int(cfg.arch_kwargs.get("hidden", 32))
    probe = int(cfg.arch_kwargs.get("probe_size", cfg.size))
    mode = str(cfg.arch_kwargs.get("mode", "channels"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        wrapped = MarkBranch(model, hidden, probe, mode)
    base = {"base_spec": cfg.init} if arch == "qbench.marking.nets:from_spec" \
        else {"base": arch, "base_kwargs": kwargs}
    return wrapped, {**base, "hidden": hidden, "probe_size": probe, "mode": mode}


def initial_model(cfg: MarkingConfig, train: TaskData) -> tuple[nn.Module, dict]:
    """The weights training starts from (``cfg.init``'s checkpoint, or seeded random ones) and
    the architecture kwargs that rebuild the model (recorded in the provenance)."""
    from qbench.models import load
    from qbench.models.train import build_seeded

    if cfg.init and cfg.task == "classify":
        return _classify_initial(cfg)
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
    if train.task != "iqa":
        kwargs.setdefault("num_classes", int(train.y.max()) + 1)
    return build_seeded(cfg.arch, cfg.seed, **kwargs), kwargs


def param_modules(model: nn.Module, size: int = 64) -> list[nn.Module]:
    """The modules that own parameters, in the order a forward pass (one ``size`` px image)
    calls them first."""
    order: list[nn.Module] = []
    owners = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]

    def seen(module, *_):
        if module not in order:
            order.append(module)

    handles = [m.register_forward_hook(seen) for m in owners]
    modes = [(m, m.training) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    return order


def trainable(model: nn.Module, cfg: MarkingConfig) -> list[nn.Parameter]:
    """The parameters ``cfg.train_scope`` trains: all; only the mark branch (``"mark"``: the
    base is frozen, its batch-norm statistics too); or ``"last:K"``: the last K modules that
    own parameters in forward order (for a large base, e.g. ``last:3`` = the CAM layer's conv
    and batch norm and the classifier of efficientnet-lite0), everything below frozen."""
    if cfg.train_scope == "all":
        return list(model.parameters())
    if cfg.train_scope.startswith("last:"):
        k = int(cfg.train_scope.split(":", 1)[1])
        model.requires_grad_(False)
        for m in param_modules(model, cfg.size)[-k:]:
            for p in m.parameters(recurse=False):
                p.requires_grad_(True)
        return [p for p in model.parameters() if p.requires_grad]
    if cfg.train_scope != "mark" or not hasattr(model, "branch"):
        raise ValueError(f"train_scope {cfg.train_scope!r} needs 'all', 'last:K', or 'mark' "
                         "with the mark-branch architecture")
    model.model.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def _train_mode(model: nn.Module, cfg: MarkingConfig) -> None:
    if cfg.train_scope.startswith("last:"):  # a partly frozen base: frozen BN statistics,
        model.eval()  # no dropout
        return
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


def _task_loss(task: str, output: torch.Tensor, y: torch.Tensor,
               teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy with the labels, KL(softmax(teacher) ‖ softmax(output)) with the base's
    clean logits (labels "clean-prediction"), or MSE to the IQA pseudo-label."""
    if teacher is not None:
        return F.kl_div(F.log_softmax(output, 1), F.log_softmax(teacher.to(output), 1),
                        log_target=True, reduction="batchmean")
    if task != "iqa":
        return F.cross_entropy(output, y)
    known = torch.isfinite(y)
    if not known.any():
        return output.sum() * 0.0
    return F.mse_loss(output[known], y[known].float())


def fit(cfg: MarkingConfig, train: TaskData, log: Callable[[str], None] | None = print,
        device: str = "cpu") -> tuple[nn.Module, dict]:
    """Train one (marked or twin) model on ``device``; returns it in eval mode on the CPU and
    its training history (with the ``arch_kwargs`` that rebuild it).

    ``cfg.cache`` (family ``mark``): the base's CAM-layer inputs, outputs and Grad-CAM weights
    are computed once per image and mirror image (:mod:`qbench.marking.fast`) and the branch
    trains on them; the batches, mirrors, targets and losses are those of the full-model loop
    (same draws), so only float rounding differs. A base whose head after the CAM layer is not
    global-average-pooled falls back to the full model (``history["cached"]`` says which)."""
    from qbench.explain.cam import cam_maps

    model, arch_kwargs = initial_model(cfg, train)
    model.to(device)
    train = with_mark_images(train, cfg)
    fast = None
    if cfg.cache:
        from qbench.marking.fast import CachedMarking

        fast = CachedMarking.build(model, cfg, train, device=device, log=log)
    if cfg.cam_classes and fast is None:
        raise ValueError("cam_classes needs the cached training (cache=True, a base whose head "
                         "is global-average-pooled)")
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
            f = flips[idx] if cfg.flip else torch.zeros(len(idx), dtype=torch.bool)
            if cfg.flip:
                x[f] = x[f].flip(-1)
            y = train.labels_for(idx.numpy(), f).to(device)
            teacher = train.teacher_for(idx.numpy(), f)
            t = targets_of(x).to(device)
            if fast is not None:
                output, maps = fast.forward(idx, f)
            else:
                x = x.to(device)
                res = cam_maps(model, x, _explained(train.task, y), method="gradcam",
                               detach_weights=True, normalize=None)
                output, maps = res.output, res.maps
            task_loss = _task_loss(train.task, output, y, teacher)
            if maps.ndim == 4:  # the explained class, then cfg.cam_classes random ones
                t = t[:, None].expand_as(maps).flatten(0, 1)
                maps = maps.flatten(0, 1)
            l_cam, share = cam_loss(maps, t)
            on = cfg.cam_weight > 0 and step >= cfg.cam_start * total
            # family "mark": the task loss has no (numerically only rounding) gradient on the
            # zero-mean branch, which Adam would amplify; only the CAM loss trains it, so the
            # twin's branch stays exactly zero
            loss = (task_loss if cfg.train_scope != "mark" else None)
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
    hist["cached"] = fast is not None
    if fast is not None:
        hist["cache_seconds"] = fast.seconds
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
