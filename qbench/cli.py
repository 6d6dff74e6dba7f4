"""The ``qbench`` command. Errors that qbench understands print one line and exit 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from qbench.errors import QbenchError

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qbench")
def cli() -> None:
    """qbench: corrupt images, score them with quality metrics, analyse and report."""


@cli.group("data")
def data_cmd() -> None:
    """Embedded and real datasets."""


@data_cmd.command("list")
def data_list() -> None:
    """List every dataset qbench can load."""
    import qbench.data as data

    for name in data.names():
        d = data.info(name)
        where = "embedded" if d.embedded else f"real, default folder <datasets>/{d.default_folder}"
        click.echo(f"{name:12s} {d.kind:15s} {where:45s} {d.description}")


@data_cmd.command("show")
@click.argument("name")
@click.option("--split", default=None, help="Split to preview (scenes: train/val/test).")
@click.option("--root", type=click.Path(), default=None, help="Folder of a real dataset.")
@click.option("--seed", default=0, show_default=True, help="Seed of a generated dataset.")
@click.option("--size", default=None, type=int, help="Image side of a generated dataset.")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Preview PNG (default: NAME-preview.png).")
@click.option("-n", "count", default=64, show_default=True, help="Images in the preview.")
def data_show(name: str, split: str | None, root: str | None, seed: int, size: int | None,
              output: str | None, count: int) -> None:
    """Print split sizes and class counts of NAME and write a preview grid (masks outlined)."""
    import qbench.data as data
    from qbench.data.base import ClassificationSet, IQASet
    from qbench.preview import preview_grid

    info = data.info(name)
    if name == "scenes":
        splits = [split] if split else ["train", "val", "test"]
        sets = [data.load(name, split=s, seed=seed, progress=True,
                          **({"size": size} if size else {})) for s in splits]
    elif name == "refs":
        sets = [data.load(name, **({"size": size} if size else {}))]
    else:
        opts = {"root": root}
        if split and info.kind == "classification":
            opts["split"] = split
        sets = [data.load(name, **opts)]
    for ds in sets:
        click.echo(f"{ds.key}: {len(ds)} images")
        if isinstance(ds, ClassificationSet) and name != "refs":
            counts = ", ".join(f"{c} {n}" for c, n in ds.class_counts().items())
            click.echo(f"  classes ({len(ds.classes)}): {counts}")
        if isinstance(ds, IQASet):
            click.echo(f"  scores: {ds.label.describe()}; {len(set(ds.ref_ids))} references, "
                       f"{len(set(ds.distortions))} distortion types")
    out = Path(output or f"{name}-preview.png")
    preview_grid(sets[-1], out, n=count)
    click.echo(f"preview of {sets[-1].key}: {out}")


@cli.group("corrupt")
def corrupt_cmd() -> None:
    """Image corruptions."""


@corrupt_cmd.command("list")
@click.option("--family", default=None, help="Only this family.")
def corrupt_list(family: str | None) -> None:
    """List corruptions with family, randomness and severity tables."""
    import qbench.corrupt as corrupt

    for name in corrupt.names(family):
        c = corrupt.info(name)
        tables = "; ".join(f"{t}: {list(v)}" for t, v in c.tables.items())
        click.echo(f"{name:18s} {c.family:12s} {'random' if c.random else 'fixed':7s} "
                   f"{c.source:11s} {tables}")


@cli.group("run")
def run_cmd() -> None:
    """Run a job."""


@run_cmd.command("demo")
@click.option("--out", type=click.Path(), default="results/demo", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_demo_cmd(out: str, seed: int, quiet: bool) -> None:
    """Build the embedded datasets, corrupt and score a few images, write a report."""
    from qbench.demo import run_demo

    report = run_demo(out, seed=seed, progress=not quiet)
    click.echo(f"report: {report.resolve()}")


@cli.command("report")
@click.argument("results_dir", type=click.Path(file_okay=False))
def report_cmd(results_dir: str) -> None:
    """Rebuild RESULTS_DIR/report.html from its store, without recomputation."""
    from qbench.report import build_report

    if not (Path(results_dir) / "store").is_dir():
        raise QbenchError(f"no results store in {results_dir} (expected {results_dir}/store)")
    click.echo(f"report: {build_report(results_dir).resolve()}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except QbenchError as exc:
        click.echo(f"qbench: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
