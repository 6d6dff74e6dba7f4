"""``qbench bench rankiqa``: efficient vs naive Siamese ranking on the same model and pairs.

Both schemes start from the same initial weights and see the same batches (the RankIQA LIVE
set made from the ``refs`` training references; batches of S sources x 4 types x 6 levels).
Each optimisation step is timed, the two schemes alternating step by step so a noisy shared
CPU slows both alike. Reported:

* ``forwards_*``: forward passes (network calls) per step -- 1 for efficient, 2 per pair for
  naive; ``forward_ratio`` is their ratio. ``image_forward_ratio`` counts images pushed through
  the network instead (naive 2 x pairs, efficient n): with pairs only inside a (source, type)
  block it is L - 1 = 5, whatever n is;
* ``wallclock_speedup``: total naive step time / total efficient step time;
* ``acc_efficient`` / ``acc_naive``: held-out pair accuracy (30-crop protocol) after the same
  number of steps; ``first_step_grad_rel_diff`` (||g_eff - g_naive|| / ||g_eff|| on the
  first, shared batch) shows that both schemes compute the same gradient. Later steps drift
  apart by float rounding only, which Adam's sign-like first updates amplify to ~lr.
"""

from __future__ import annotations

import time

import torch

from qbench.errors import QbenchError
from qbench.rankiqa.evaluate import ranking_accuracy
from qbench.rankiqa.pairs import efficient_loss, n_pairs, naive_loss
from qbench.rankiqa.pipeline import ranked_split
from qbench.rankiqa.ranked import sample_batch
from qbench.rankiqa.train import RankConfig, cosine_schedule, new_model


def _step(model, opt, loss_fn, batch, margin) -> tuple[float, int, torch.Tensor]:
    t0 = time.perf_counter()
    loss, passes = loss_fn(model, batch, margin)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if loss.is_cuda:  # kernels are asynchronous: wait for them before reading the clock
        torch.cuda.synchronize(loss.device)
    dt = time.perf_counter() - t0
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    return dt, passes, grad


def run(n: int = 48, steps: int = 150, crop: int = 48, size: int = 128, seed: int = 0,
        threads: int = 1, progress: bool = False, device: str = "cpu") -> dict:
    """Train both schemes side by side for ``steps`` steps on batches of ``n`` images, on
    ``device`` (batches are cut on the CPU, then moved there)."""
    split = ranked_split("live", size=size, seed=seed)
    _, t, n_levels = split.train.shape
    block = t * n_levels
    if n % block or n < block:
        raise QbenchError(f"n must be a multiple of {block} (sources x {t} types x {n_levels} "
                          f"levels), got {n}")
    sources = n // block
    torch.set_num_threads(threads)
    cfg = RankConfig(sources=sources, crop=crop, seed=seed)
    models = {"efficient": new_model(cfg.widths, seed).to(device),
              "naive": new_model(cfg.widths, seed).to(device)}
    opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr) for k, m in models.items()}
    scheds = {k: cosine_schedule(o, steps) for k, o in opts.items()}  # as train_ranking
    losses = {"efficient": efficient_loss, "naive": naive_loss}
    gens = {k: torch.Generator().manual_seed(seed + 1) for k in models}
    seconds = {k: 0.0 for k in models}
    passes = {k: 0 for k in models}
    first_grads: dict[str, torch.Tensor] = {}
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="efficient vs naive", unit="step")
    for _ in it:
        for k in ("efficient", "naive"):  # alternate, same batch for both
            batch = sample_batch(split.train, sources, crop, gens[k]).to(device)
            models[k].train()
            dt, p, grad = _step(models[k], opts[k], losses[k], batch, cfg.margin)
            scheds[k].step()
            first_grads.setdefault(k, grad)
            seconds[k] += dt
            passes[k] += p
    acc = {k: ranking_accuracy(m.eval(), split.test, crop)["all"] for k, m in models.items()}
    g_e, g_n = first_grads["efficient"], first_grads["naive"]
    grad_diff = float((g_e - g_n).norm() / g_e.norm().clamp_min(1e-30))
    pairs = n_pairs(sources, t, n_levels)
    fwd_e, fwd_n = passes["efficient"] / steps, passes["naive"] / steps
    return {
        "n": n, "pairs_per_step": pairs, "steps": steps, "crop": crop, "size": size,
        "threads": threads, "seed": seed, "device": device, "test_refs": split.test.refs,
        "forwards_efficient": fwd_e, "forwards_naive": fwd_n,
        "forward_ratio": fwd_n / fwd_e,
        "image_forward_ratio": 2 * pairs / n,
        "step_s_efficient": seconds["efficient"] / steps,
        "step_s_naive": seconds["naive"] / steps,
        "wallclock_speedup": seconds["naive"] / seconds["efficient"],
        "acc_efficient": acc["efficient"], "acc_naive": acc["naive"],
        "first_step_grad_rel_diff": grad_diff,
        "floors": {"forward_ratio>=n-1": fwd_n / fwd_e >= n - 1,
                   "wallclock_speedup>=5": seconds["naive"] / seconds["efficient"] >= 5,
                   "acc_efficient>=acc_naive-0.01": acc["efficient"] >= acc["naive"] - 0.01},
    }
