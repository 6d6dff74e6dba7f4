"""``qbench zoo``: list, train and verify the classifiers of the zoo; describe any model spec."""

from __future__ import annotations

import click

from qbench.device import device_option
from qbench.errors import QbenchError


@click.group("zoo")
def zoo_cmd() -> None:
    """The zoo of trained classifiers (checkpoints with provenance)."""


@zoo_cmd.command("list")
def zoo_list() -> None:
    """Every zoo entry: architecture, seed, trained?, clean test accuracy, sha256, where.

    A "!" after the accuracy marks a checkpoint below the 90% clean test accuracy floor."""
    from qbench.models import zoo

    click.echo(f"{'name':24} {'arch':12} {'seed':>4} {'role':6} {'trained':7} "
               f"{'test acc':>8} {'sha256':12} where")
    for name in zoo.ZOO:
        r = zoo.status(name)
        acc = f"{100 * r['test_acc']:.2f}%" if r["test_acc"] is not None else "-"
        if r["test_acc"] is not None and r["test_acc"] < zoo.ACC_FLOOR:
            acc += "!"  # below the accuracy floor
        click.echo(f"{r['name']:24} {r['arch']:12} {r['seed']:>4} {r['role']:6} "
                   f"{'yes' if r['trained'] else 'no':7} {acc:>8} {r['sha256'] or '-':12} "
                   f"{r['where'] or '-'}")


@zoo_cmd.command("train")
@click.argument("names", nargs=-1, required=True)
@device_option
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="folder for NAME.pt/.json (default: $QBENCH_HOME/zoo)")
@click.option("--threads", type=int, default=1, show_default=True,
              help="torch CPU threads (the machine may be shared)")
def zoo_train(names: tuple[str, ...], device: str, out: str | None, threads: int) -> None:
    """Train zoo entries NAMES deterministically and save them with provenance."""
    from qbench.models import zoo
    from qbench.models.checkpoint import provenance

    for name in names:
        zoo.entry(name)  # fail on an unknown name before any training
    for name in names:
        cmd = f"qbench zoo train {name} --device {device} --threads {threads}" + (
            f" --out {out}" if out else "")
        path = zoo.train_entry(name, out=out, device=device, threads=threads, command=cmd)
        prov = provenance(path)
        click.echo(f"{name}: clean test accuracy {100 * prov.metrics['test_acc']:.2f}%, "
                   f"val {100 * prov.metrics['val_acc']:.2f}%, "
                   f"sha256 {prov.sha256[:12]} -> {path}")


@zoo_cmd.command("verify")
@click.argument("names", nargs=-1)
@device_option
def zoo_verify(names: tuple[str, ...], device: str) -> None:
    """Re-hash checkpoints and re-measure clean test accuracy (all trained entries by default)."""
    from qbench.models import zoo

    targets = list(names) or [n for n in zoo.ZOO if zoo.status(n)["trained"]]
    if not targets:
        raise QbenchError("no trained zoo entry to verify; train one with `qbench zoo train`")
    failed = []
    for name in targets:
        try:
            r = zoo.verify_entry(name, device=device)
        except QbenchError as exc:
            click.echo(f"FAIL {name}: {exc}", err=True)
            failed.append(name)
            continue
        click.echo(f"ok   {name}: sha256 {r['sha256']}, test accuracy "
                   f"{100 * r['test_acc']:.2f}% (recorded {100 * r['recorded_test_acc']:.2f}%)")
    if failed:
        raise QbenchError(f"{len(failed)} of {len(targets)} zoo checkpoints failed "
                          f"verification: {', '.join(failed)}")


@zoo_cmd.command("info")
@click.argument("spec")
def zoo_info(spec: str) -> None:
    """What model SPEC is, without loading its weights where possible.

    SPEC is any model spec: a zoo name, a .pt path, torchvision:ARCH[=PATH],
    timm:NAME[=PATH], package.module:attr or a named model (efficientnet-lite0)."""
    from qbench.models import info

    prov = info(spec)
    extra = dict(prov.extra)
    classes = extra.get("classes")
    if classes:
        extra["classes"] = f"{len(classes)}: {', '.join(map(str, classes[:5]))}" + (
            ", ..." if len(classes) > 5 else "")
    click.echo(f"{'name':14} {prov.name}")
    click.echo(f"{'arch':14} {prov.arch}")
    if prov.sha256:
        click.echo(f"{'sha256':14} {prov.sha256}")
    for key in ("source", "weights", "num_classes", "classes", "input_size", "normalization",
                "cam_layer"):
        value = extra.get(key)
        click.echo(f"{key:14} {value if value not in (None, '') else '-'}")
