"""The ``qbench`` command. Errors that qbench understands print one line and exit 2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from qbench.device import device_option
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


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(e) for e in v) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _selected(family: str | None, source: str | None) -> list[str]:
    import qbench.corrupt as corrupt

    return [n for n in corrupt.names(family)
            if source is None or corrupt.info(n).source == source]


@corrupt_cmd.command("list")
@click.option("--family", default=None, help="Only this family (noise, blur, weather, ...).")
@click.option("--source", default=None,
              help="Only this set: imagenet-c, kadid, rankiqa-live, rankiqa-tid.")
@click.option("--tables", is_flag=True, help="Print every severity table in full.")
def corrupt_list(family: str | None, source: str | None, tables: bool) -> None:
    """List corruptions with set, family, randomness and severity tables."""
    import qbench.corrupt as corrupt

    shown = _selected(family, source)
    for name in shown:
        c = corrupt.info(name)
        click.echo(f"{name:45s} {c.source:13s} {c.family:12s} "
                   f"{'random' if c.random else 'fixed':7s} "
                   f"{', '.join(f'{t}: {len(v)} levels' for t, v in c.tables.items())}")
        if tables:
            for t, v in c.tables.items():
                click.echo(f"    {t}: {', '.join(_fmt(p) for p in v)}")
    click.echo(f"{len(shown)} corruptions")


@corrupt_cmd.command("preview")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(), default="corruptions.png", show_default=True)
@click.option("--family", default=None, help="Only this family.")
@click.option("--source", default=None, help="Only this set (imagenet-c, kadid, ...).")
@click.option("--size", default=128, show_default=True, help="Longer side of each tile.")
@click.option("--seed", default=0, show_default=True)
@device_option
def corrupt_preview(image: str, output: str, family: str | None, source: str | None, size: int,
                    seed: int, device: str) -> None:
    """Write a grid of IMAGE under every corruption (rows) and severity (columns)."""
    from qbench.corrupt.preview import preview
    from qbench.data.imagefile import read_image

    path = preview(read_image(image), output, _selected(family, source), size=size, seed=seed,
                   device=device)
    click.echo(f"preview: {path}")


@cli.group("metrics")
def metrics_cmd() -> None:
    """Quality metrics: built-ins, plugins and every pyiqa metric."""


@metrics_cmd.command("list")
@click.option("--no-check", is_flag=True,
              help="Do not try to create metrics that need weights (faster on a first run).")
@click.option("--offline-only", is_flag=True, help="Only metrics usable offline right now.")
@click.option("--json", "as_json", is_flag=True)
def metrics_list(no_check: bool, offline_only: bool, as_json: bool) -> None:
    """Every metric with kind, direction, minimum size, weights, training data and whether it
    can be used offline now (checked once, then cached until the weight caches change)."""
    from qbench.metrics import catalog

    rows = catalog.rows(check=not no_check, progress=not as_json)
    if offline_only:
        rows = [r for r in rows if r.offline]
    if as_json:
        click.echo(catalog.as_json(rows))
        return
    click.echo(f"{'name':32s} {'kind':4s} {'better':7s} {'min px':6s} {'weights':7s} "
               f"{'offline':7s} trained on / why not usable")
    for r in rows:
        better = "?" if r.higher_is_better is None else ("higher" if r.higher_is_better
                                                          else "lower")
        note = r.reason if not r.offline else ", ".join(r.trained_on)
        click.echo(f"{r.name:32s} {r.kind:4s} {better:7s} {r.min_size:<6d} "
                   f"{'yes' if r.needs_weights else 'no':7s} {'yes' if r.offline else 'NO':7s} "
                   f"{note[:110]}")
    click.echo(f"{sum(r.offline for r in rows)} of {len(rows)} usable offline")


@cli.group("leaderboard")
def leaderboard_cmd() -> None:
    """The IQA metric leaderboard: admit metrics, score them, show the table."""


def _testset(testset: str, root: str | None, n_refs: int | None, size: int, levels: str):
    from qbench.leaderboard import testsets

    if testset == testsets.EMBEDDED:
        lv = tuple(int(v) for v in levels.split(","))
        return testsets.load(testset, n_refs=n_refs, size=size, levels=lv)
    return testsets.load(testset, root=root)


_board_dir = click.option("--dir", "folder", type=click.Path(file_okay=False),
                          default="results/leaderboard", show_default=True)
_testset_opts = [
    click.option("--testset", "--dataset", "testset", default="refs-kadid", show_default=True,
                 help="refs-kadid (embedded) or kadid10k, tid2013, live, csiq, koniq10k."),
    click.option("--root", type=click.Path(), default=None, help="Folder of a real dataset."),
    click.option("--n-refs", type=int, default=8, show_default=True,
                 help="refs-kadid: reference photographs used."),
    click.option("--size", type=int, default=192, show_default=True,
                 help="refs-kadid: image side (MS-SSIM needs >= 161)."),
    click.option("--levels", default="1,2,3,4,5", show_default=True, help="refs-kadid: levels."),
]


def _with_testset_options(fn):
    for opt in reversed(_testset_opts):
        fn = opt(fn)
    return fn


@leaderboard_cmd.command("add")
@click.argument("spec")
@_board_dir
@click.option("--no-score", is_flag=True, help="Only admit; score later with `run`.")
@_with_testset_options
@device_option
def leaderboard_add(spec: str, folder: str, no_score: bool, testset: str, root: str | None,
                    n_refs: int, size: int, levels: str, device: str) -> None:
    """Probe SPEC (a metric name, entry point or module:attr) and, if it passes, add it to the
    board and score it. A rejected metric leaves the board untouched."""
    from qbench.leaderboard.board import Leaderboard

    board = Leaderboard(folder)
    entry = board.admit(spec)
    name = entry["info"]["name"]
    click.echo(f"admitted {name}: " + "; ".join(c["detail"] for c in entry["probe"]["checks"]))
    if not no_score:
        totals = board.run(_testset(testset, root, n_refs, size, levels), [name], device=device)
        click.echo(f"{board.outcome(name, testset, totals[name])}; see `qbench leaderboard "
                   f"show --dir {folder}`")


def engine_options(fn):
    """``--engine`` and ``--device``: where a scoring run executes (the rows do not change
    with the engine; a GPU run is its own run)."""
    fn = device_option(fn)
    return click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                        show_default=True,
                        help="local: this process; ray: a Ray cluster ($RAY_ADDRESS, else a "
                             "local one)")(fn)


@leaderboard_cmd.command("run")
@_board_dir
@click.option("--metrics", default="offline", show_default=True,
              help="Comma-separated metric specs to admit and score, 'offline' for every pyiqa "
                   "metric usable without weights, or 'entries' for those already on the board.")
@_with_testset_options
@engine_options
def leaderboard_run(folder: str, metrics: str, testset: str, root: str | None, n_refs: int,
                    size: int, levels: str, engine: str, device: str) -> None:
    """Score metrics on a test set (resumable: finished rows are reused)."""
    from qbench.leaderboard.board import Leaderboard, Rejected
    from qbench.metrics.pyiqa_adapter import WEIGHT_FREE

    board = Leaderboard(folder)
    if metrics == "entries":
        names = list(board.entries())
    else:
        specs = ([f"pyiqa:{n}" for n in sorted(WEIGHT_FREE)] if metrics == "offline"
                 else [m.strip() for m in metrics.split(",") if m.strip()])
        names = []
        for spec in specs:
            known = {e["spec"]: n for n, e in board.entries().items()}
            if spec in known:
                names.append(known[spec])
                continue
            try:
                names.append(board.admit(spec)["info"]["name"])
            except Rejected as exc:
                click.echo(f"skipped: {exc}", err=True)
    totals = board.run(_testset(testset, root, n_refs, size, levels), names, engine=engine,
                       device=device)
    for name, t in totals.items():
        click.echo(f"{name:24s} written {t['written']:6d}  failed {t['failed']:5d}  "
                   f"reused {t['reused']:6d}")
    from qbench.report.leaderboard import build as build_page

    click.echo(f"report: {build_page(folder).resolve()}")


@leaderboard_cmd.command("show")
@_board_dir
@click.option("--testset", "--dataset", "testset", default=None,
              help="Default: every test set on the board.")
@click.option("--breakdown", is_flag=True, help="Also print the per-distortion table.")
@click.option("--json", "as_json", is_flag=True)
def leaderboard_show(folder: str, testset: str | None, breakdown: bool, as_json: bool) -> None:
    """Print the leaderboard (statistics with 95% CIs, items scored and failed)."""
    import json

    from qbench.leaderboard.board import Leaderboard
    from qbench.leaderboard.render import render_table

    board = Leaderboard(folder)
    keys = [testset] if testset else board.testsets()
    if not keys:
        raise QbenchError(f"no leaderboard in {folder} yet (run `qbench leaderboard run`)")
    result = {}
    for key in keys:
        table, per = board.table(key)
        if as_json:
            result[key] = {"table": json.loads(table.to_json(orient="records")),
                           "breakdown": {k: json.loads(v.to_json(orient="records"))
                                         for k, v in per.items()}}
            continue
        click.echo(render_table(key, board, table))
        if breakdown:
            for name, frame in per.items():
                if not frame.empty:
                    click.echo(f"\n{name}: per distortion\n{frame.to_string(index=False)}")
    if as_json:
        click.echo(json.dumps(result, indent=2))


@cli.group("bench")
def bench_cmd() -> None:
    """Benchmarks: qbench against a baseline measured in the same run, printed as ratios."""


@bench_cmd.command("corrupt")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--fidelity", is_flag=True, help="Compare outputs instead of timing them.")
@click.option("-n", "n_images", default=64, show_default=True, help="Images (224 px refs).")
@click.option("--size", default=224, show_default=True)
@device_option
def bench_corrupt(as_json: bool, fidelity: bool, n_images: int, size: int, device: str) -> None:
    """qbench's ImageNet-C against the imagecorruptions package (speed, or --fidelity)."""
    import json

    from qbench.bench import corrupt as bench

    if fidelity:
        report = bench.run_fidelity(n=min(n_images, 16), size=size, device=device)
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        for name, entry in report.items():
            for row in entry["severities"]:
                if "baseline_error" in row:
                    click.echo(f"{name:18s} s{row['severity']}  baseline failed: "
                               f"{row['baseline_error'][:70]}")
                    continue
                pix = row.get("psnr_qbench_vs_baseline")
                click.echo(f"{name:18s} s{row['severity']}  clean-PSNR qbench "
                           f"{row['clean_psnr_qbench']:6.2f}  baseline "
                           f"{row['clean_psnr_baseline']:6.2f}"
                           + (f"  qbench-vs-baseline PSNR {pix:6.2f}" if pix else ""))
        return
    result = bench.run_speed(n=n_images, size=size, device=device, progress=not as_json)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(f"aggregate_speedup: {result.aggregate_speedup:.2f}x over "
                   f"{sum(t.speedup is not None for t in result.timings)} corruptions "
                   f"({n_images} images, {size} px, severities 1-5, {device})")


@bench_cmd.command("score")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-n", "n_images", default=64, show_default=True)
@click.option("--size", default=192, show_default=True)
@click.option("--repeats", default=2, show_default=True)
@device_option
def bench_score(as_json: bool, n_images: int, size: int, repeats: int, device: str) -> None:
    """The scoring engine against a plain per-image pyiqa loop (offline metrics)."""
    import json

    from qbench.bench import score as bench

    result = bench.run(n=n_images, size=size, repeats=repeats, progress=not as_json,
                       device=device)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"speedup: {result['speedup']:.2f}x ({result['qbench_s']:.2f} s vs "
                   f"{result['pyiqa_loop_s']:.2f} s for {n_images} images x "
                   f"{len(result['metrics'])} metrics); peak RSS MB {result['peak_rss_mb']}")


@bench_cmd.command("scale")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-n", "n_images", default=16, show_default=True)
@click.option("--size", default=128, show_default=True)
@device_option
def bench_scale(as_json: bool, n_images: int, size: int, device: str) -> None:
    """Rows per second: the local engine vs Ray with 1 and 2 workers, on the same work."""
    import json

    from qbench.bench import scale as bench

    result = bench.run(n=n_images, size=size, progress=not as_json, device=device)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    s = result["sides"]
    click.echo(f"rows/s: local {s['local']['rows_per_s']}, ray 1 worker "
               f"{s['ray-1']['rows_per_s']}, ray 2 workers {s['ray-2']['rows_per_s']} "
               f"(2 vs 1 workers: {result['ray2_vs_ray1']:.2f}x; Ray start "
               f"{result['ray_start_s']} s, not counted)")
    click.echo("gpu: " + (json.dumps(result["gpu"]) if result["gpu"] else "none on this machine"))


@bench_cmd.command("explain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--model", default="scenes-vgg-s-s0", show_default=True,
              help="A zoo classifier, or resnet18 (random init, 224 px).")
@click.option("-n", "n_images", default=16, show_default=True)
@click.option("--masks", default=500, show_default=True, help="RISE masks.")
@click.option("--repeats", default=3, show_default=True)
@device_option
def bench_explain(as_json: bool, model: str, n_images: int, masks: int, repeats: int,
                  device: str) -> None:
    """Grad-CAM vs pytorch-grad-cam and vs forward+backward, RISE and deletion overheads."""
    import json

    from qbench.bench import explain as bench

    result = bench.run(model=model, n=n_images, n_masks=masks, repeats=repeats,
                       progress=not as_json, device=device)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for key, floor in result["floors"].items():
        ok = "meets" if result["meets_floors"][key] else "MISSES"
        click.echo(f"{key:24s} {result[key]:8.3f}   floor {floor:6s} {ok}")


@cli.group("run")
def run_cmd() -> None:
    """Run a job."""


@run_cmd.command("demo")
@click.option("--out", type=click.Path(), default="results/demo", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@engine_options
def run_demo_cmd(out: str, seed: int, quiet: bool, engine: str, device: str) -> None:
    """Build the embedded datasets, corrupt and score a few images, write a report."""
    from qbench.demo import run_demo

    report = run_demo(out, seed=seed, progress=not quiet, engine=engine, device=device)
    click.echo(f"report: {report.resolve()}")


@cli.group("study")
def study_cmd() -> None:
    """Studies: list them, run one with a preset (the same as python studies/NAME.py)."""


@study_cmd.command("list")
def study_list() -> None:
    from qbench import study

    click.echo(f"{'study':<22} {'presets':<14} question")
    for name in study.names():
        s = study.get(name)
        click.echo(f"{name:<22} {','.join(s.presets):<14} {s.question.splitlines()[0][:70]}")


@study_cmd.command("run", context_settings={"ignore_unknown_options": True,
                                            "allow_extra_args": True})
@click.argument("name")
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def study_run(name: str, options: tuple[str, ...]) -> None:
    """Run study NAME; OPTIONS are the study's own (see `qbench study run NAME --help`)."""
    from qbench import study

    study.main(name, list(options))


@cli.command("report")
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--all", "all_reports", is_flag=True,
              help="Rebuild every report under RESULTS_DIR and write RESULTS_DIR/index.html.")
def report_cmd(results_dir: str, all_reports: bool) -> None:
    """Rebuild RESULTS_DIR/report.html from stored results, without recomputation.

    RESULTS_DIR is a study run (study.json), a leaderboard (entries.json) or a scoring store
    (store/, e.g. results/demo). With --all, every such folder under RESULTS_DIR is rebuilt
    (a failure is reported and the others still built) and a landing page links them."""
    from qbench.report import build_all, build_report

    if not all_reports:
        click.echo(f"report: {Path(build_report(results_dir)).resolve()}")
        return

    def show(entry) -> None:
        if entry.error:
            click.echo(f"failed: {entry.found.folder}: {entry.error}", err=True)
        else:
            click.echo(f"report: {entry.report}")

    built = build_all(results_dir, progress=show)
    click.echo(f"index: {built.index.resolve()}")
    if built.failed:
        raise QbenchError(f"{len(built.failed)} of {len(built.entries)} report(s) could not be "
                          "rebuilt (listed above and on the index page)")


# --- command groups contributed by subpackages: one line each, below this marker ---
from qbench.marking.cli import marking_cmd; cli.add_command(marking_cmd)  # noqa: E402, E702, I001
from qbench.causal.cli import aligned_cmd; cli.add_command(aligned_cmd)  # noqa: E402, E702, I001
from qbench.doctor import doctor_cmd; cli.add_command(doctor_cmd)  # noqa: E402, E702, I001
from qbench.rankiqa.cli import bench_rankiqa, rankiqa_cmd; cli.add_command(rankiqa_cmd); bench_cmd.add_command(bench_rankiqa)  # noqa: E402, E702, I001
from qbench.models.cli import zoo_cmd; cli.add_command(zoo_cmd)  # noqa: E402, E702, I001


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
