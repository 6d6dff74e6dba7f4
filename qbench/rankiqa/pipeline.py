"""The steps the CLI and the study share: ranked data with a reference split, fine-tuning
targets on the same split, and saving checkpoints with provenance."""

from __future__ import annotations

import hashlib
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import qbench.corrupt as corrupt
from qbench.models import Provenance, save
from qbench.rankiqa.net import ARCH
from qbench.rankiqa.ranked import (
    RankedSet,
    build,
    generator_names,
    load_references,
    split_references,
)
from qbench.rankiqa.targets import (
    DEFAULT_PSEUDO_METRIC,
    TargetSet,
    from_dataset,
    pseudo_labelled,
    split_by_reference,
)

# The leaderboard's embedded test set is made of the same photographs: declare it, so the
# board marks these checkpoints "trained on this set" there.
EMBEDDED_TESTSET = "refs-kadid"


@dataclass
class RankedSplit:
    train: RankedSet
    test: RankedSet | None
    references: torch.Tensor
    keys: list[str]
    source: str  # "refs" or the pristine folder's name


def ranked_split(which: str = "live", size: int = 160, folder: str | None = None,
                 test_fraction: float = 0.2, seed: int = 0, all_refs: bool = False
                 ) -> RankedSplit:
    """Ranked data for generator set ``which`` with a reference-disjoint train/test split."""
    refs, keys = load_references(size, folder)
    ranked = build(refs, keys, generator_names(which), seed=seed)
    source = "refs" if folder is None else Path(folder).name
    if all_refs:
        return RankedSplit(ranked, None, refs, keys, source)
    train, test = split_references(len(keys), test_fraction, seed)
    return RankedSplit(ranked.subset_refs(train), ranked.subset_refs(test), refs, keys, source)


def kadid_types(n: int | None = None) -> list[str]:
    """The KADID-10k corruption names (the first ``n`` of them in a fixed spread order)."""
    names = [c for c in corrupt.names() if corrupt.info(c).source == "kadid"]
    if n is None or n >= len(names):
        return names
    step = len(names) / n
    return [names[int(k * step)] for k in range(n)]


def targets_split(dataset: str, references: torch.Tensor, keys: list[str],
                  test_refs: list[str] | None, root: str | None = None,
                  metric: str = DEFAULT_PSEUDO_METRIC, n_types: int | None = None,
                  levels=(1, 2, 3, 4, 5), size: int | None = None,
                  max_items: int | None = None, test_fraction: float = 0.2, seed: int = 0,
                  progress: bool = False, source: str = "refs", device: str = "cpu"
                  ) -> tuple[TargetSet, TargetSet]:
    """(train, test) fine-tuning targets. ``dataset="refs"``: full-reference pseudo-labels
    (the metric runs on ``device``) on the ranking's own ``references``, held out by the
    ranking's ``test_refs``; otherwise a real dataset split by its own references."""
    if dataset == "refs":
        ts = pseudo_labelled(references, keys, kadid_types(n_types), levels, metric, seed,
                             progress, source, device=device)
        if not test_refs:
            return ts, ts.subset([])
        return split_by_reference(ts, test_refs=test_refs)
    ts = from_dataset(dataset, root, size=size, max_items=max_items, seed=seed,
                      progress=progress)
    return split_by_reference(ts, test_fraction, seed)


def fingerprint(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(model: nn.Module, name: str, folder: str | Path | None, seed: int,
                    data_fingerprint: str, metrics: dict, extra: dict) -> Path:
    """Save ``model`` to the zoo (or ``folder``) with its provenance."""
    widths = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)][:-1]
    prov = Provenance(name=name, arch=ARCH, arch_kwargs={"widths": widths},
                      command=" ".join(["qbench", *map(shlex.quote, sys.argv[1:])])
                      if Path(sys.argv[0]).name == "qbench" else " ".join(sys.argv),
                      seed=int(seed), data_fingerprint=data_fingerprint,
                      metrics={k: float(v) for k, v in metrics.items()}, extra=extra)
    return save(model, prov, folder)
