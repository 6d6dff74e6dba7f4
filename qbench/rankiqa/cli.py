"""``qbench rankiqa train | finetune | eval`` and ``qbench bench rankiqa``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qbench.device import device_option

_out = [click.option("--name", default=None, help="Checkpoint name (zoo entry)."),
        click.option("--out", type=click.Path(file_okay=False), default=None,
                     help="Folder for the checkpoint (default: $QBENCH_HOME/zoo)."),
        click.option("--ship", is_flag=True,
                     help="Write into qbench/models/checkpoints/ (committed, small models).")]


def _with(opts):
    def deco(fn):
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return deco


def _folder(out: str | None, ship: bool):
    from qbench.models.checkpoint import SHIPPED

    return SHIPPED if ship else out


@click.group("rankiqa")
def rankiqa_cmd() -> None:
    """RankIQA: learn to rank distorted images, fine-tune, use as the `rankiqa` metrics."""


@rankiqa_cmd.command("train")
@click.option("--set", "which", type=click.Choice(["live", "tid"]), default="live",
              show_default=True, help="RankIQA generator set.")
@click.option("--pristine", type=click.Path(file_okay=False), default=None,
              help="A folder of pristine images to use instead of the embedded refs.")
@click.option("--size", default=160, show_default=True, help="Reference side (px).")
@click.option("--crop", default=64, show_default=True, help="Training/test crop side (px).")
@click.option("--steps", default=1500, show_default=True)
@click.option("--sources", default=2, show_default=True, help="References per batch.")
@click.option("--margin", default=1.0, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--scheme", type=click.Choice(["efficient", "naive"]), default="efficient",
              show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--test-fraction", default=0.2, show_default=True,
              help="Share of references held out (reference-disjoint).")
@click.option("--threads", default=1, show_default=True, help="torch CPU threads.")
@device_option
@_with(_out)
def train_cmd(which, pristine, size, crop, steps, sources, margin, lr, scheme, seed,
              test_fraction, threads, device, name, out, ship) -> None:
    """Learn to rank on generated data; report held-out ranking accuracy; save to the zoo."""
    import torch

    from qbench.rankiqa.evaluate import ranking_accuracy
    from qbench.rankiqa.pipeline import EMBEDDED_TESTSET, fingerprint, ranked_split, save_checkpoint
    from qbench.rankiqa.train import RankConfig, train_ranking

    torch.set_num_threads(threads)
    split = ranked_split(which, size, pristine, test_fraction, seed)
    cfg = RankConfig(steps=steps, sources=sources, crop=crop, margin=margin, lr=lr, seed=seed,
                     scheme=scheme)
    model, hist = train_ranking(split.train, cfg, progress=True, device=device)
    acc = ranking_accuracy(model, split.test, crop) if split.test is not None else {}
    for k, v in acc.items():
        click.echo(f"held-out pair accuracy {k:32s} {v:.3f}")
    trained_on = [split.source] + ([EMBEDDED_TESTSET] if split.source == "refs" else [])
    path = save_checkpoint(
        model, name or "rankiqa", _folder(out, ship), seed, fingerprint(split.train.images),
        {f"heldout_pair_accuracy/{k}": v for k, v in acc.items()},
        {"crop": crop, "trained_on": trained_on, "generator_set": which, "pristine": pristine,
         "config": cfg.as_dict(), "size": size, "train_refs": split.train.refs,
         "test_refs": split.test.refs if split.test is not None else [],
         "train_seconds": hist.seconds, "final_loss": sum(hist.losses[-50:]) / 50,
         **({"device": device} if device != "cpu" else {}),
         "description": f"RankIQA ranking-only ({which} generator set on {split.source}, "
                        f"{crop} px crops, efficient Siamese hinge)"})
    click.echo(f"checkpoint: {path}")


@rankiqa_cmd.command("finetune")
@click.option("--from", "base", default="rankiqa", show_default=True,
              help="Ranking checkpoint to start from (zoo name or .pt path).")
@click.option("--dataset", default="refs", show_default=True,
              help="refs (full-reference pseudo-labels) or kadid10k, tid2013, live (MOS).")
@click.option("--root", type=click.Path(), default=None, help="Folder of a real dataset.")
@click.option("--metric", default="pyiqa:fsim", show_default=True,
              help="refs: the full-reference metric giving the pseudo-labels.")
@click.option("--types", "n_types", default=None, type=int,
              help="refs: use this many KADID distortion types (default all 25).")
@click.option("--size", default=None, type=int,
              help="Real datasets: resize images to this shorter side.")
@click.option("--max-items", default=None, type=int, help="Real datasets: subset size.")
@click.option("--steps", default=800, show_default=True)
@click.option("--batch", default=32, show_default=True)
@click.option("--lr", default=3e-4, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=1, show_default=True)
@device_option
@_with(_out)
def finetune_cmd(base, dataset, root, metric, n_types, size, max_items, steps, batch, lr, seed,
                 threads, device, name, out, ship) -> None:
    """Fine-tune a ranking checkpoint with MSE on MOS or pseudo-labels (reference-disjoint)."""
    import torch

    from qbench.models import load
    from qbench.rankiqa.evaluate import correlations
    from qbench.rankiqa.metric import locate
    from qbench.rankiqa.pipeline import (
        EMBEDDED_TESTSET,
        fingerprint,
        save_checkpoint,
        targets_split,
    )
    from qbench.rankiqa.ranked import load_references
    from qbench.rankiqa.train import FinetuneConfig, finetune, score_targets

    torch.set_num_threads(threads)
    model, prov = load(base if base.endswith(".pt") else locate(base), map_location=device)
    model.to(device)
    crop = int(prov.extra["crop"])
    refs, keys = load_references(int(prov.extra["size"]), prov.extra.get("pristine"))
    test_refs = list(prov.extra.get("test_refs", []))
    missing = sorted(set(test_refs) - set(keys))
    if missing:
        raise click.ClickException(f"the checkpoint's held-out references {missing} are not "
                                   "among the references found")
    train, test = targets_split(dataset, refs, keys, test_refs, root, metric, n_types,
                                size=size, max_items=max_items, seed=seed, progress=True,
                                device=device,
                                source=Path(prov.extra["pristine"]).name
                                if prov.extra.get("pristine") else "refs")
    before = correlations(score_targets(model, test, crop), test.target) if len(test) else {}
    cfg = FinetuneConfig(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed)
    model, hist = finetune(model, train, cfg, progress=True, device=device)
    after = correlations(score_targets(model, test, crop), test.target) if len(test) else {}
    for label, c in (("before", before), ("after", after)):
        if c:
            click.echo(f"{label} fine-tuning: SRCC {c['srcc']:.3f}  PLCC {c['plcc']:.3f} "
                       f"on {c['n']} held-out images ({test.ground_truth})")
    trained_on = list(dict.fromkeys([*prov.extra.get("trained_on", []), train.source]
                                    + ([EMBEDDED_TESTSET] if train.source == "refs" else [])))
    metrics = {f"{k}_{stage}": v for stage, c in (("before", before), ("after", after))
               for k, v in c.items() if k != "n"}
    path = save_checkpoint(
        model, name or "rankiqa-ft", _folder(out, ship), seed,
        fingerprint(*(train.images[:64])),
        metrics,
        {"crop": crop, "trained_on": trained_on, "base": prov.name, "base_sha256": prov.sha256,
         "size": prov.extra["size"], "generator_set": prov.extra.get("generator_set"),
         "pristine": prov.extra.get("pristine"),
         "dataset": dataset, "ground_truth": train.ground_truth, "config": cfg.as_dict(),
         "train_refs": sorted(set(train.refs)), "test_refs": sorted(set(test.refs)),
         "n_train": len(train), "n_test": len(test), "train_seconds": hist.seconds,
         **({"device": device} if device != "cpu" else {}),
         "description": f"RankIQA fine-tuned with MSE on {train.ground_truth}"})
    click.echo(f"checkpoint: {path}")


@rankiqa_cmd.command("eval")
@click.option("--name", default="rankiqa", show_default=True, help="Zoo name or .pt path.")
@click.option("--set", "which", type=click.Choice(["live", "tid"]), default=None,
              help="Generator set (default: the checkpoint's).")
@click.option("--n-crops", default=30, show_default=True)
@device_option
def eval_cmd(name: str, which: str | None, n_crops: int, device: str) -> None:
    """Held-out pair accuracy per distortion type on the checkpoint's own test references."""
    from qbench.models import load
    from qbench.rankiqa.evaluate import ranking_accuracy
    from qbench.rankiqa.metric import locate
    from qbench.rankiqa.ranked import build, generator_names, load_references

    model, prov = load(name if name.endswith(".pt") else locate(name), map_location=device)
    model.to(device)
    test_refs = list(prov.extra.get("test_refs", []))
    if not test_refs:
        raise click.ClickException(f"{name} records no held-out references")
    refs, keys = load_references(int(prov.extra["size"]), prov.extra.get("pristine"))
    idx = [keys.index(k) for k in test_refs]
    which = which or prov.extra.get("generator_set") or "live"
    ranked = build(refs[idx], test_refs, generator_names(which), seed=prov.seed)
    acc = ranking_accuracy(model, ranked, int(prov.extra["crop"]), n_crops)
    for k, v in acc.items():
        click.echo(f"held-out pair accuracy {k:45s} {v:.3f}")
    click.echo(f"({len(test_refs)} held-out references: {', '.join(test_refs)}; "
               f"{ranked.shape[2]} levels incl. pristine; ties count 1/2)")


@click.command("rankiqa")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-n", "n_images", default=48, show_default=True,
              help="Images per batch (a multiple of 24: sources x 4 types x 6 levels).")
@click.option("--steps", default=150, show_default=True, help="Optimisation steps per scheme.")
@click.option("--crop", default=48, show_default=True)
@click.option("--seed", default=0, show_default=True)
@device_option
def bench_rankiqa(as_json: bool, n_images: int, steps: int, crop: int, seed: int,
                  device: str) -> None:
    """Efficient vs naive Siamese: forward passes and wall-clock per step, accuracy reached."""
    from qbench.bench import rankiqa as bench

    result = bench.run(n=n_images, steps=steps, crop=crop, seed=seed, progress=not as_json,
                       device=device)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"forward passes per step: efficient {result['forwards_efficient']}, naive "
               f"{result['forwards_naive']} (ratio {result['forward_ratio']:.0f}; images "
               f"through the network: ratio {result['image_forward_ratio']:.1f})")
    click.echo(f"wall-clock per step: efficient {result['step_s_efficient']:.3f} s, naive "
               f"{result['step_s_naive']:.3f} s (speedup {result['wallclock_speedup']:.1f}x)")
    click.echo(f"held-out pair accuracy after {steps} steps: efficient "
               f"{result['acc_efficient']:.3f}, naive {result['acc_naive']:.3f}")
