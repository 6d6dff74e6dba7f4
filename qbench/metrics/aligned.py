"""Task-aligned quality metrics: quality measured as "how well would a classifier do on this?".

Drenkow & Unberath (2025) argue that an IQA metric predicts DNN performance only when it is
sensitive to the same factors as the DNN, and propose task-aligned metrics. qbench has two,
both no-reference and higher-is-better, both built on a *proxy* classifier
(``scenes-proxy-cnn-s0``, architecture ``proxy-cnn``) that is none of the evaluated task models
(``resnet-s``, ``vgg-s``, ``mobilenet-s``), so they can be evaluated against all of them:

``proxy-confidence``
    The proxy's maximum softmax probability, max_k softmax(f(x))_k, in [1/K, 1]. The analogue
    of the paper's zero-shot CLIP score (ZSCLIP-IQA): a classifier's own certainty, no training
    for quality. Chosen over negative entropy because it is the standard misclassification
    detector (Hendrycks & Gimpel 2017), bounded and readable as a probability, and it depends
    only on the winning class, not on how the rest of the mass spreads over unrelated classes.
    Labels are not used (NR): it scores any image.

``tg-iqa`` (task-guided IQA)
    A small no-reference CNN regressor (architecture ``tgiqa-cnn``) trained to predict the
    proxy's softmax probability of the *true* class, p_true = exp(-cross-entropy), on corrupted
    ``scenes`` **train and val** images (never test images, never with an evaluated task
    model). p_true is the proxy's expected correctness made smooth: it is 1 when the proxy is
    sure and right, near 0 when it is wrong, and it avoids the coin-flip noise of 0/1
    correctness as a regression target. Training data: each sampled image gets a corruption
    drawn uniformly from the 19 ImageNet-C corruptions (or stays clean with probability
    1/20) and a severity uniform in 1..5, applied by the corruption engine with a fixed seed;
    loss: binary cross-entropy with logits against the soft target p_true; Adam, fixed epochs,
    seeded shuffling. The score is sigmoid(output): the predicted probability that a classifier
    recognises the image's content, so higher is better. ``train_tgiqa`` (CLI
    ``qbench aligned train``) writes the checkpoint with provenance (proxy name and sha256,
    data fingerprint, command, seed, validation Spearman / AUROC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qbench.metrics.base import MetricInfo, check_inputs
from qbench.models.nets import Normalize, conv_bn
from qbench.models.registry import register

PROXY = "scenes-proxy-cnn-s0"
TGIQA_CHECKPOINT = "tgiqa-scenes-s0"
TARGET = "proxy p_true (softmax probability of the true class)"


# --------------------------------------------------------------------------- architecture


class TGIQANet(nn.Module):
    """Normalise -> 4 stages of (3x3 conv, BN, ReLU) x 2 with stride-2 entries -> global
    average pool -> linear -> one logit. ~100k parameters; any input size >= 16 px."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96)) -> None:
        super().__init__()
        self.normalize = Normalize()
        layers: list[nn.Module] = []
        cin = 3
        for w in widths:
            layers.append(nn.Sequential(conv_bn(cin, w, 3, 2), conv_bn(w, w, 3)))
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.normalize(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)).squeeze(1)


@register("tgiqa-cnn")
def tgiqa_cnn(widths: tuple[int, ...] = (16, 32, 64, 96)) -> TGIQANet:
    return TGIQANet(tuple(widths))


# --------------------------------------------------------------------------- metrics


def _load(name: str, device: str) -> tuple[nn.Module, Any]:
    from qbench.models import load

    model, prov = load(name, map_location=device)
    return model.to(device).eval(), prov


def _trained_on(prov: Any) -> tuple[str, ...]:
    extra = getattr(prov, "extra", {}) or {}
    ds = extra.get("dataset", "scenes")
    splits = extra.get("splits", ["train"])
    return tuple(f"{ds}/{s}" for s in splits)


def _proxy_info(prov: Any) -> MetricInfo:
    return MetricInfo(
        # the version names the weights: a retrained proxy is another scorer
        "proxy-confidence", f"1+{prov.sha256[:12]}", "NR", higher_is_better=True,
        min_size=16,
        needs_weights=True, trained_on=_trained_on(prov),
        description=f"max softmax probability of the proxy classifier {prov.name} "
                    f"(sha256 {prov.sha256[:12]}); not an evaluated task model")


def _tgiqa_info(prov: Any) -> MetricInfo:
    extra = prov.extra or {}
    trained = tuple(f"{extra.get('dataset', 'scenes')}/{s} (corrupted)"
                    for s in extra.get("splits", ["train", "val"]))
    return MetricInfo(
        "tg-iqa", f"1+{prov.sha256[:12]}", "NR", higher_is_better=True, min_size=16,
        needs_weights=True,
        trained_on=trained,
        description=f"tgiqa-cnn ({prov.name}, sha256 {prov.sha256[:12]}) predicting "
                    f"{extra.get('target', TARGET)} of proxy {extra.get('proxy', PROXY)}")


def _find_tgiqa(checkpoint: str):
    from qbench.models.checkpoint import SHIPPED, CheckpointError, find, user_dir

    try:
        return find(checkpoint)
    except CheckpointError:
        raise CheckpointError(
            f"no TG-IQA checkpoint {checkpoint!r}: looked for {checkpoint}.pt in "
            f"{user_dir()} and {SHIPPED}; train it with `qbench aligned train` "
            f"(needs the proxy {PROXY})") from None


def proxy_confidence_info() -> MetricInfo:
    """``proxy-confidence``'s metadata from the proxy's provenance (weights not read)."""
    from qbench.models import info

    return _proxy_info(info(PROXY))


def tg_iqa_info() -> MetricInfo:
    """``tg-iqa``'s metadata from its checkpoint's provenance (weights not read)."""
    from qbench.models import provenance

    return _tgiqa_info(provenance(_find_tgiqa(TGIQA_CHECKPOINT)))


class ProxyConfidence:
    """Maximum softmax probability of the proxy classifier (see the module docstring)."""

    def __init__(self, device: str = "cpu", checkpoint: str = PROXY) -> None:
        self.device = device
        self.model, prov = _load(checkpoint, device)
        self.info = _proxy_info(prov)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        logits = self.model(images.to(self.device, torch.float32))
        return logits.softmax(dim=1).amax(dim=1).double().cpu()


class TGIQA:
    """Task-guided IQA: predicted proxy p_true of an image (see the module docstring)."""

    def __init__(self, device: str = "cpu", checkpoint: str = TGIQA_CHECKPOINT) -> None:
        self.device = device
        _find_tgiqa(checkpoint)
        self.model, prov = _load(checkpoint, device)
        self.info = _tgiqa_info(prov)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, refs: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.info, images, refs)
        return torch.sigmoid(self.model(images.to(self.device, torch.float32))).double().cpu()


def proxy_confidence(device: str = "cpu") -> ProxyConfidence:
    """Factory behind the built-in name ``proxy-confidence``."""
    return ProxyConfidence(device=device)


def tg_iqa(device: str = "cpu") -> TGIQA:
    """Factory behind the built-in name ``tg-iqa``."""
    return TGIQA(device=device)


# --------------------------------------------------------------------------- training


@dataclass
class TrainConfig:
    proxy: str = PROXY
    name: str = TGIQA_CHECKPOINT
    n_train: int = 4000  # sampled scenes/train images
    n_val: int = 500  # sampled scenes/val images
    draws: int = 2  # corrupted versions per sampled image
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    threads: int = 1
    widths: tuple[int, ...] = (16, 32, 64, 96)
    clean_probability: float = 0.05
    corruptions: list[str] = field(default_factory=list)  # empty: the 19 ImageNet-C ones
    data_options: dict = field(default_factory=dict)  # passed to data.load("scenes", ...)


def imagenet_c_corruptions() -> list[str]:
    from qbench.corrupt.registry import REGISTRY

    return [n for n, c in REGISTRY.items() if c.source == "imagenet-c"]


def corrupted_split(split: str, n: int, cfg: TrainConfig, offset: int
                    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, int]]]:
    """``draws`` seeded corrupted versions of ``n`` seeded images of ``scenes/<split>``:
    (images, labels, per-image condition)."""
    import qbench.corrupt as corrupt
    import qbench.data as data

    ds = data.load("scenes", split=split, **cfg.data_options)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + offset)
    idx = torch.randperm(len(ds), generator=gen)[:n].sort().values.numpy()
    names = cfg.corruptions or imagenet_c_corruptions()
    base = ds.batch(idx)
    labels = torch.as_tensor(np.asarray(ds.labels)[idx], dtype=torch.long)
    xs, ys, conds = [], [], []
    for _ in range(cfg.draws):
        clean = torch.rand(n, generator=gen) < cfg.clean_probability
        which = torch.randint(len(names), (n,), generator=gen)
        sev = torch.randint(1, 6, (n,), generator=gen)
        out = base.clone()
        cond: list[tuple[str, int]] = [("clean", 0)] * n
        for c in range(len(names)):
            for s in range(1, 6):
                sel = torch.nonzero((which == c) & (sev == s) & ~clean).flatten()
                if len(sel):
                    out[sel] = corrupt.apply(base[sel], names[c], s, seed=cfg.seed)
                    for i in sel.tolist():
                        cond[i] = (names[c], s)
        xs.append(out)
        ys.append(labels)
        conds += cond
    return torch.cat(xs), torch.cat(ys), conds


@torch.no_grad()
def proxy_targets(proxy: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                  batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(p_true, correct) of the proxy on ``images`` (run where the proxy is; CPU results)."""
    from qbench.device import model_device

    dev = model_device(proxy)
    p, ok = [], []
    for i in range(0, len(images), batch):
        logits = proxy(images[i:i + batch].to(dev)).cpu()
        prob = logits.softmax(1)
        y = labels[i:i + batch]
        p.append(prob.gather(1, y[:, None]).squeeze(1))
        ok.append((logits.argmax(1) == y).float())
    return torch.cat(p), torch.cat(ok)


def _evaluate(model: nn.Module, x: torch.Tensor, p_true: torch.Tensor, correct: torch.Tensor
              ) -> dict[str, float]:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from qbench.device import model_device

    dev = model_device(model)
    with torch.no_grad():
        logit = torch.cat([model(x[i:i + 256].to(dev)).cpu() for i in range(0, len(x), 256)])
    pred = torch.sigmoid(logit)
    out = {"val_bce": float(F.binary_cross_entropy_with_logits(logit, p_true)),
           "val_spearman_p_true": float(spearmanr(pred.numpy(), p_true.numpy())[0]),
           "val_proxy_accuracy": float(correct.mean())}
    c = correct.numpy()
    out["val_auroc_proxy_correct"] = (float(roc_auc_score(c, pred.numpy()))
                                      if 0 < c.sum() < len(c) else float("nan"))
    return out


def train_tgiqa(cfg: TrainConfig, out: str | Path | None = None, progress: bool = True,
                command: str = "", device: str = "cpu") -> Path:
    """Train TG-IQA as the module docstring states; returns the checkpoint path.

    Deterministic: the same config on the same machine and thread count gives the same bytes.
    The corrupted data is made on the CPU (same images whatever the device); the proxy and
    the training run on ``device`` (recorded in the provenance when it is not the CPU).
    """
    from qbench.data.cache import array_fingerprint
    from qbench.models import Provenance, save
    from qbench.models.checkpoint import find, sha256_file

    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    proxy, prov = _load(cfg.proxy, device)
    proxy_sha = sha256_file(find(cfg.proxy)) if not str(cfg.proxy).endswith(".pt") \
        else sha256_file(Path(cfg.proxy))
    xtr, ytr, _ = corrupted_split("train", cfg.n_train, cfg, offset=1)
    xva, yva, _ = corrupted_split("val", cfg.n_val, cfg, offset=2)
    ptr, _ = proxy_targets(proxy, xtr, ytr)
    pva, cva = proxy_targets(proxy, xva, yva)
    if progress:
        print(f"tg-iqa: {len(xtr)} train / {len(xva)} val corrupted images, proxy p_true mean "
              f"{float(ptr.mean()):.3f}, data ready in {time.time() - t0:.0f}s", flush=True)
    torch.manual_seed(cfg.seed)
    model = tgiqa_cnn(cfg.widths).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * ((len(xtr) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1))
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            b = order[i:i + cfg.batch_size]
            loss = F.binary_cross_entropy_with_logits(model(xtr[b].to(device)),
                                                      ptr[b].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        if progress:
            print(f"tg-iqa: epoch {epoch + 1}/{cfg.epochs} train bce {total / len(xtr):.4f}",
                  flush=True)
    model.eval()
    metrics = _evaluate(model, xva, pva, cva)
    if progress:
        print("tg-iqa: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
    fingerprint = array_fingerprint({"train": (xtr * 255).round().to(torch.uint8).numpy(),
                                     "val": (xva * 255).round().to(torch.uint8).numpy()})
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}
    provenance = Provenance(
        name=cfg.name, arch="tgiqa-cnn", arch_kwargs={"widths": list(cfg.widths)},
        command=command, seed=cfg.seed, data_fingerprint=fingerprint, metrics=metrics,
        extra={"dataset": "scenes", "splits": ["train", "val"], "proxy": prov.name,
               "proxy_sha256": proxy_sha, "target": TARGET, "config": config,
               "corruptions": cfg.corruptions or imagenet_c_corruptions(),
               "train_seconds": round(time.time() - t0, 1),
               **({"device": device} if device != "cpu" else {})})
    return save(model, provenance, out)
