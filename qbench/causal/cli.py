"""``qbench aligned``: train the task-guided quality metric TG-IQA (see qbench.metrics.aligned)."""

from __future__ import annotations

import sys

import click

from qbench.device import device_option


@click.group("aligned")
def aligned_cmd() -> None:
    """Task-aligned quality metrics (proxy-confidence, tg-iqa)."""


@aligned_cmd.command("train")
@click.option("--proxy", default="scenes-proxy-cnn-s0", show_default=True,
              help="proxy classifier checkpoint (never an evaluated task model)")
@click.option("--name", default="tgiqa-scenes-s0", show_default=True)
@click.option("--n-train", default=4000, show_default=True, help="scenes/train images sampled")
@click.option("--n-val", default=500, show_default=True, help="scenes/val images sampled")
@click.option("--draws", default=2, show_default=True, help="corrupted versions per image")
@click.option("--epochs", default=8, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=1, show_default=True)
@click.option("--out", default=None, help="folder for NAME.pt/.json (default: $QBENCH_HOME/zoo)")
@device_option
def train(proxy: str, name: str, n_train: int, n_val: int, draws: int, epochs: int, seed: int,
          threads: int, out: str | None, device: str) -> None:
    """Train TG-IQA on corrupted scenes train/val images to predict the proxy's p_true."""
    from qbench.metrics.aligned import TrainConfig, train_tgiqa

    cfg = TrainConfig(proxy=proxy, name=name, n_train=n_train, n_val=n_val, draws=draws,
                      epochs=epochs, seed=seed, threads=threads)
    path = train_tgiqa(cfg, out=out, command="qbench " + " ".join(sys.argv[1:]), device=device)
    click.echo(str(path))
