"""The test protocol (mean score over random crops) and the numbers a ranker is judged by."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from torch import nn

from qbench.device import model_device
from qbench.rankiqa.pairs import pair_accuracy
from qbench.rankiqa.ranked import RankedSet

N_CROPS = 30


def crop_positions(h: int, w: int, crop: int, n: int = N_CROPS, seed: int = 0
                   ) -> list[tuple[int, int]]:
    """``n`` random top-left corners of ``crop`` x ``crop`` windows in an h x w image."""
    g = torch.Generator().manual_seed(int(seed))
    ys = torch.randint(0, h - crop + 1, (n,), generator=g).tolist()
    xs = torch.randint(0, w - crop + 1, (n,), generator=g).tolist()
    return list(zip(ys, xs, strict=True))


@torch.no_grad()
def score_images(model: nn.Module, images: torch.Tensor, crop: int, n_crops: int = N_CROPS,
                 seed: int = 0, chunk: int = 256) -> torch.Tensor:
    """Mean model score over ``n_crops`` random crops per image (Nx3xHxW) -> N float64.

    The crop positions depend only on (H, W, crop, n_crops, seed), so every image of a size is
    cut at the same places and the result does not depend on the batch.
    """
    n, _, h, w = images.shape
    if crop >= min(h, w):  # the whole (square-cropped) image; repeats would add nothing
        side = min(h, w)
        windows = images[..., (h - side) // 2 : (h - side) // 2 + side,
                         (w - side) // 2 : (w - side) // 2 + side]
        if side != crop:
            windows = nn.functional.interpolate(windows, size=(crop, crop), mode="bilinear",
                                                antialias=True, align_corners=False)
        return _forward(model, windows.float(), chunk).double()
    pos = crop_positions(h, w, crop, n_crops, seed)
    windows = torch.stack([images[..., y : y + crop, x : x + crop] for y, x in pos], 1)
    scores = _forward(model, windows.flatten(0, 1).float(), chunk).view(n, len(pos))
    return scores.double().mean(1)


def _forward(model: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Scores on the CPU; each chunk runs on the device the model's parameters are on."""
    dev = model_device(model)
    return torch.cat([model(x[i : i + chunk].to(dev)).detach().cpu()
                      for i in range(0, len(x), chunk)])


def score_ranked(model: nn.Module, ranked: RankedSet, crop: int, n_crops: int = N_CROPS,
                 seed: int = 0) -> torch.Tensor:
    """Scores of every image of a ranked set, shaped R x T x L."""
    r, t, n_levels = ranked.shape
    flat = ranked.images.flatten(0, 2).float() / 255
    out = torch.cat([score_images(model, flat[i : i + 64], crop, n_crops, seed)
                     for i in range(0, len(flat), 64)])
    return out.view(r, t, n_levels)


def ranking_accuracy(model: nn.Module, ranked: RankedSet, crop: int, n_crops: int = N_CROPS,
                     seed: int = 0) -> dict[str, float]:
    """Share of correctly ordered level pairs per distortion type (ties count 1/2), and 'all'."""
    acc = pair_accuracy(score_ranked(model, ranked, crop, n_crops, seed))
    out = {name: float(a) for name, a in zip(ranked.types, acc.tolist(), strict=True)}
    out["all"] = float(acc.mean())
    return out


def correlations(pred, target) -> dict[str, float]:
    """SRCC and PLCC (raw, no logistic fit) of predictions against a higher-is-better target."""
    p, t = np.asarray(pred, dtype=float), np.asarray(target, dtype=float)
    if len(p) < 3 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return {"srcc": float("nan"), "plcc": float("nan"), "n": len(p)}
    return {"srcc": float(stats.spearmanr(p, t).statistic),
            "plcc": float(stats.pearsonr(p, t).statistic), "n": len(p)}
