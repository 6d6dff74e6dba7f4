"""Training loops: learning to rank (efficient or naive Siamese) and MSE fine-tuning."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from qbench.errors import QbenchError
from qbench.models import build
from qbench.rankiqa.evaluate import N_CROPS, score_images
from qbench.rankiqa.net import ARCH
from qbench.rankiqa.pairs import efficient_loss, naive_loss
from qbench.rankiqa.ranked import RankedSet, sample_batch
from qbench.rankiqa.targets import TargetSet

SCHEMES = {"efficient": efficient_loss, "naive": naive_loss}


@dataclass
class RankConfig:
    steps: int = 1500
    sources: int = 2  # batch = sources x types x levels images
    crop: int = 64
    margin: float = 1.0
    lr: float = 1e-3
    seed: int = 0
    scheme: str = "efficient"
    widths: tuple[int, ...] = (8, 16, 32, 64)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FinetuneConfig:
    steps: int = 800
    batch: int = 32
    crop: int = 64
    lr: float = 3e-4
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    losses: list[float] = field(default_factory=list)
    forward_passes: int = 0
    seconds: float = 0.0


def new_model(widths=(8, 16, 32, 64), seed: int = 0) -> nn.Module:
    """A freshly initialised ``rankiqa-cnn`` (the init depends on ``seed`` only)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build(ARCH, widths=list(widths))


def cosine_schedule(opt: torch.optim.Optimizer, steps: int):
    """Cosine decay of the learning rate to 0 over ``steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + np.cos(np.pi * min(k, steps) / max(steps, 1))))


def train_ranking(ranked: RankedSet, cfg: RankConfig, model: nn.Module | None = None,
                  progress: bool = False, device: str | torch.device = "cpu"
                  ) -> tuple[nn.Module, History]:
    """Learn to order each (source, type) block's levels with the hinge ranking loss.

    The model trains on ``device``; batches are cut on the CPU with a CPU generator (so the
    sampled crops do not depend on the device) and moved there."""
    if cfg.scheme not in SCHEMES:
        raise QbenchError(f"scheme must be one of {', '.join(SCHEMES)}, not {cfg.scheme!r}")
    model = model if model is not None else new_model(cfg.widths, cfg.seed)
    model.to(device)
    model.train()
    loss_fn = SCHEMES[cfg.scheme]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = cosine_schedule(opt, cfg.steps)
    g = torch.Generator().manual_seed(int(cfg.seed) + 1)
    hist = History()
    steps = range(cfg.steps)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"ranking ({cfg.scheme})", unit="step")
    t0 = time.perf_counter()
    for _ in steps:
        batch = sample_batch(ranked, cfg.sources, cfg.crop, g).to(device)
        loss, passes = loss_fn(model, batch, cfg.margin)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist.losses.append(float(loss.detach()))
        hist.forward_passes += passes
    hist.seconds = time.perf_counter() - t0
    return model.eval(), hist


def _crop_batch(ts: TargetSet, idx: list[int], crop: int, g: torch.Generator) -> torch.Tensor:
    out = []
    for i in idx:
        im = ts.images[i]
        h, w = im.shape[-2:]
        if min(h, w) < crop:
            raise QbenchError(f"image {i} is {h}x{w}, smaller than the {crop} px crop")
        y = int(torch.randint(0, h - crop + 1, (1,), generator=g))
        x = int(torch.randint(0, w - crop + 1, (1,), generator=g))
        c = im[:, y : y + crop, x : x + crop].float() / 255
        out.append(c.flip(-1) if bool(torch.rand(1, generator=g) < 0.5) else c)
    return torch.stack(out)


def score_targets(model: nn.Module, ts: TargetSet, crop: int, n_crops: int = N_CROPS,
                  seed: int = 0) -> np.ndarray:
    """The test protocol on every image of ``ts`` (grouped by size) -> float64 scores."""
    out = np.empty(len(ts))
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(ts.images):
        by_size.setdefault(tuple(im.shape[-2:]), []).append(i)
    for idx in by_size.values():
        for k in range(0, len(idx), 64):
            part = idx[k : k + 64]
            x = torch.stack([ts.images[i] for i in part]).float() / 255
            out[part] = score_images(model, x, crop, n_crops, seed).numpy()
    return out


@torch.no_grad()
def calibrate_head(model: nn.Module, ts: TargetSet, crop: int, max_items: int = 384,
                   seed: int = 0) -> None:
    """Rescale the final linear layer so the scores start with the target's mean and spread.

    Ranking scores have an arbitrary offset and scale. Matching the first two moments (a
    positive gain, so the learnt order is kept) lets MSE fine-tuning start near the target's
    range; a least-squares fit would instead shrink the gain to ~0 whenever ranking scores do
    not yet compare across images, erasing what ranking taught the head.
    """
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(ts), generator=g)[:max_items].tolist()
    s = score_targets(model, ts.subset(idx), crop, n_crops=4, seed=seed)
    t = ts.target[idx]
    a = float(t.std() / s.std()) if s.std() > 0 else 0.0
    b = float(t.mean() - a * s.mean())
    head = model.head
    head.weight.mul_(a)
    head.bias.mul_(a).add_(b)


def finetune(model: nn.Module, train: TargetSet, cfg: FinetuneConfig, progress: bool = False,
             device: str | torch.device = "cpu") -> tuple[nn.Module, History]:
    """MSE regression of the crop score on the target (higher is better, in [0, 1]), on
    ``device`` (crops are cut on the CPU with a CPU generator, then moved there)."""
    model.to(device)
    calibrate_head(model, train, cfg.crop, seed=cfg.seed)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = cosine_schedule(opt, cfg.steps)
    g = torch.Generator().manual_seed(int(cfg.seed) + 2)
    target = torch.as_tensor(train.target, dtype=torch.float32).to(device)
    hist = History()
    steps = range(cfg.steps)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="fine-tuning (MSE)", unit="step")
    t0 = time.perf_counter()
    for _ in steps:
        idx = torch.randint(0, len(train), (cfg.batch,), generator=g).tolist()
        x = _crop_batch(train, idx, cfg.crop, g).to(device)
        loss = nn.functional.mse_loss(model(x), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist.losses.append(float(loss.detach()))
        hist.forward_passes += 1
    hist.seconds = time.perf_counter() - t0
    return model.eval(), hist
