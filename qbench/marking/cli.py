"""``qbench marking``: list, train and inspect marked models and their twins."""

from __future__ import annotations

import json

import click

from qbench.device import device_option


@click.group("marking")
def marking_cmd() -> None:
    """Marked models (Grad-CAM pushed onto a planted target) and their unmarked twins."""


@marking_cmd.command("list")
@click.option("--seed", default=0, show_default=True)
def list_cmd(seed: int) -> None:
    """Every model of the plan: found or missing, and its measured metrics."""
    import qbench.marking  # noqa: F401
    from qbench.marking.zoo import by_name
    from qbench.models import CheckpointError, find, provenance

    for name in by_name(seed):
        try:
            prov = provenance(find(name))
            shown = " ".join(f"{k}={v:.3f}" for k, v in prov.metrics.items() if k != "n")
            click.echo(f"{name:44s} {shown}")
        except CheckpointError:
            click.echo(f"{name:44s} missing (qbench marking train {name})")


@marking_cmd.command("train")
@click.argument("names", nargs=-1, required=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", default=None, help="folder (default: $QBENCH_HOME/zoo)")
@click.option("--threads", default=1, show_default=True)
@device_option
def train_cmd(names: tuple[str, ...], seed: int, out: str | None, threads: int,
              device: str) -> None:
    """Train marked models / twins of the plan by name ('all' for every one)."""
    import torch

    import qbench.marking  # noqa: F401
    from qbench.errors import QbenchError
    from qbench.marking.zoo import by_name, train_and_save
    from qbench.models.checkpoint import user_dir

    torch.set_num_threads(threads)
    known = by_name(seed)
    chosen = list(known) if names == ("all",) else list(names)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise QbenchError(f"unknown marked model(s) {', '.join(unknown)}; "
                          "see `qbench marking list`")
    for n in chosen:
        path = train_and_save(known[n], out or user_dir(), device=device)
        click.echo(json.dumps({"name": n, "path": str(path)}))
