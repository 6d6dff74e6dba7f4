"""Hostile inputs: each gives a clear recorded failure (or a scored value with a recorded note)
while the run goes on; item failures are final, metric/setup failures are retried on rerun."""

import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import qbench.data as data
from qbench.data.base import ImageSet, IQASet, LabelSpec
from qbench.data.imagefile import read_image
from qbench.engine import grid, score
from qbench.errors import DatasetFormatError
from qbench.metrics import MetricInfo
from qbench.store import Store
from tests.dataset_fixtures import WRITERS
from tests.plugins import Nondeterministic, Raises, ReturnsNaN, WrongShape
from tests.reliability.files import file_set, rgb, truncated
from tests.toy_metrics import MeanAbsError, MeanBrightness, NeedsBigInputs

RNG = np.random.default_rng(0)
WIDE = (10000, 10)  # width x height


class Hangs:
    """Never returns until released (the engine's per-call timeout must give up on it)."""

    info = MetricInfo("plugin:hangs", "1", "NR", higher_is_better=True)
    release = threading.Event()

    def __call__(self, images, refs=None):
        self.release.wait(120)
        return images.mean(dim=(1, 2, 3)).double()


class Exits:
    """Calls sys.exit: must not end the run."""

    info = MetricInfo("plugin:exits", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        raise SystemExit(3)


class Counting:
    """Wraps a metric and counts the images it is asked to score."""

    def __init__(self, metric):
        self.metric, self.info, self.images = metric, metric.info, 0

    def __call__(self, images, refs=None):
        self.images += images.shape[0]
        return self.metric(images, refs)


def _hostile_files(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    f = {name: folder / name for name in [
        "good1.png", "good2.png", "good3.png", "zero.png", "truncated.png", "truncated.jpg",
        "text.png", "missing.png", "gray.png", "rgba.png", "gray16.png", "rgb16.png",
        "palette.png", "cmyk.jpg", "tiny.png", "wide.png", "int32.tif", "float.tif"]}
    for k, name in enumerate(["good1.png", "good2.png", "good3.png"]):
        rgb(f[name], k)
    f["zero.png"].write_bytes(b"")
    truncated(f["truncated.png"], 5)
    Image.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(f["truncated.jpg"])
    f["truncated.jpg"].write_bytes(f["truncated.jpg"].read_bytes()[:200])
    f["text.png"].write_text("this is not an image\n")
    Image.fromarray(RNG.integers(0, 256, (16, 16), dtype=np.uint8), "L").save(f["gray.png"])
    Image.fromarray(RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8), "RGBA").save(f["rgba.png"])
    Image.fromarray(RNG.integers(0, 65536, (16, 16), dtype=np.uint16)).save(f["gray16.png"])
    cv2.imwrite(str(f["rgb16.png"]), RNG.integers(0, 65536, (16, 16, 3), dtype=np.uint16))
    Image.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE).save(f["palette.png"])
    Image.fromarray(RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8), "CMYK").save(f["cmyk.jpg"])
    rgb(f["tiny.png"], 7, (1, 1))
    rgb(f["wide.png"], 8, WIDE)
    Image.fromarray(RNG.integers(0, 2**20, (16, 16), dtype=np.int32), "I").save(f["int32.tif"])
    Image.fromarray(RNG.normal(100, 50, (16, 16)).astype(np.float32), "F").save(f["float.tif"])
    return f


def _hostile_tensors() -> ImageSet:
    good = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    nan, inf, neg = good.clone(), good.clone(), good.clone()
    nan[0, 3, 3] = float("nan")
    inf[1, 2, 2] = float("inf")
    neg[2, 0, 0] = -0.5

    def raises():
        raise RuntimeError("the reader failed")

    items = {"t-good": lambda: good, "t-nan": lambda: nan, "t-inf": lambda: inf,
             "t-negative": lambda: neg, "t-0-255": lambda: good * 255,
             "t-uint8": lambda: (good * 255).to(torch.uint8),
             "t-4-channels": lambda: torch.rand(4, 16, 16), "t-2d": lambda: good[0],
             "t-reader-raises": raises}
    readers = list(items.values())
    return ImageSet("tensors", "all", list(items), reader=lambda i: readers[i]())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    files = _hostile_files(tmp / "files")
    files["missing.png"].unlink(missing_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QBENCH_METRIC_TIMEOUT", "1")
        store = Store(tmp / "store")
        run = store.begin_run({"job": "hostile"})
        plugins = [Raises(), ReturnsNaN(), WrongShape(), Nondeterministic(), Hangs(), Exits()]
        mean, big = Counting(MeanBrightness()), NeedsBigInputs()
        for ds in (file_set(list(files.values())), _hostile_tensors()):
            score(store, run, ds, grid([]), [mean, big, *plugins], batch_size=8, progress=False,
                  workers=1)
        first = {"images_scored": mean.images, "rows": store.rows(run),
                 "failures": store.failures(run), "notes": store.notes(run)}
        # rerun (timeout back to default, the hanging metric released): what is retried?
        Hangs.release.set()
        mp.setenv("QBENCH_METRIC_TIMEOUT", "60")
        again = Counting(MeanBrightness())
        retried = [Counting(p) for p in [Raises(), ReturnsNaN(), WrongShape(), Hangs()]]
        for ds in (file_set(list(files.values())), _hostile_tensors()):
            score(store, run, ds, grid([]), [again, big, *retried], batch_size=8,
                  progress=False, workers=1)
    first.update(files=files, store=store, run=run, rerun_mean=again.images,
                 rerun_plugins={c.info.name: c.images for c in retried})
    return first


def _outcome(h, item, scorer):
    r = h["rows"][(h["rows"].item == item) & (h["rows"].scorer == scorer)]
    f = h["failures"][(h["failures"].item == item) & (h["failures"].scorer == scorer)]
    assert len(r) + len(f) == 1, (item, scorer, r, f)
    return (float(r.value.iloc[0]), None) if len(r) else (f.reason.iloc[0], f.kind.iloc[0])


@pytest.mark.parametrize("item, words", [
    ("zero.png", "empty (0 bytes)"), ("truncated.png", "cannot decode"),
    ("truncated.jpg", "cannot decode"), ("text.png", "cannot decode"),
    ("missing.png", "image file missing"), ("int32.tif", "intensity scale is unknown"),
    ("float.tif", "expected [0, 1]"), ("t-nan", "are NaN"), ("t-inf", "are inf"),
    ("t-negative", "outside [0, 1]"), ("t-0-255", "outside [0, 1]"),
    ("t-uint8", "dtype torch.uint8"), ("t-4-channels", "shape (4, 16, 16)"),
    ("t-2d", "shape (16, 16)"), ("t-reader-raises", "the reader failed"),
])
def test_an_unusable_image_is_a_final_item_failure_for_every_scorer(hostile, item, words):
    for scorer in ("toy:mean", "toy:big", "plugin:raises", "plugin:hangs"):
        reason, kind = _outcome(hostile, item, scorer)
        assert words in reason and kind == "item", (scorer, reason, kind)


@pytest.mark.parametrize("item, note", [
    ("gray.png", "grayscale converted to RGB"), ("rgba.png", "alpha channel dropped"),
    ("gray16.png", "16-bit grayscale (I;16) scaled by 1/65535"),
    ("rgb16.png", "16-bit RGB scaled by 1/65535"), ("palette.png", "palette converted to RGB"),
    ("cmyk.jpg", "CMYK (no colour management) converted to RGB"),
])
def test_a_converted_image_is_scored_and_the_conversion_is_noted(hostile, item, note):
    value, _ = _outcome(hostile, item, "toy:mean")
    assert isinstance(value, float)
    notes = hostile["notes"][hostile["notes"].item == item].note.tolist()
    assert any(note in n for n in notes), notes
    assert hostile["notes"][hostile["notes"].item == "good1.png"].empty


def test_a_16_bit_colour_png_keeps_its_full_precision(hostile):
    raw = cv2.imread(str(hostile["files"]["rgb16.png"]), cv2.IMREAD_UNCHANGED)
    expected = float((raw.astype(np.float32) / 65535.0).mean())
    value, _ = _outcome(hostile, "rgb16.png", "toy:mean")
    assert value == pytest.approx(expected, abs=1e-6)
    eight_bit = float((raw >> 8).mean() / 255)  # what an 8-bit decode would give
    assert abs(value - eight_bit) > 1e-5


def test_a_1x1_and_a_10000x10_image_are_scored_where_the_metric_allows(hostile):
    for item in ("tiny.png", "wide.png"):
        value, _ = _outcome(hostile, item, "toy:mean")
        assert isinstance(value, float)
        reason, kind = _outcome(hostile, item, "toy:big")
        assert "at least 161 px" in reason and kind == "item"


@pytest.mark.parametrize("scorer, words", [
    ("plugin:raises", "this metric always fails"), ("plugin:nan", "non-finite score nan"),
    ("plugin:shape", ", 3) for "),
    ("plugin:random", "nondeterministic"), ("plugin:hangs", "did not return within 1 s"),
    ("plugin:exits", "MetricExit: the metric raised SystemExit(3)"),
])
def test_a_broken_metric_is_recorded_per_item_as_not_the_items_fault(hostile, scorer, words):
    good = ["good1.png", "good2.png", "good3.png", "gray.png", "t-good"]
    for item in good:
        reason, kind = _outcome(hostile, item, scorer)
        assert kind in ("config", "transient") and isinstance(reason, str)
    reasons = " | ".join(_outcome(hostile, item, scorer)[0] for item in good)
    assert words in reasons
    expected_kind = "transient" if scorer == "plugin:hangs" else "config"
    assert {_outcome(hostile, i, scorer)[1] for i in good} == {expected_kind}


def test_the_run_goes_on_every_usable_image_gets_its_value(hostile):
    usable = ["good1.png", "good2.png", "good3.png", "gray.png", "rgba.png", "gray16.png",
              "rgb16.png", "palette.png", "cmyk.jpg", "tiny.png", "wide.png", "t-good"]
    rows = hostile["rows"]
    assert sorted(rows[rows.scorer == "toy:mean"].item) == sorted(usable)
    assert set(rows.scorer) == {"toy:mean"}  # no value was written for a broken metric


def test_a_rerun_retries_metric_failures_but_not_item_failures(hostile):
    # toy:mean finished every usable item and its item failures are final: not called again
    assert hostile["rerun_mean"] == 0
    # the broken metrics are asked again for the 12 usable items (once, or twice after the
    # batch call failed and the items were isolated one by one)
    assert hostile["rerun_plugins"]["plugin:hangs"] == 12 + 1  # + the determinism check
    for name in ("plugin:raises", "plugin:nan", "plugin:shape"):
        assert hostile["rerun_plugins"][name] >= 12, name
    # the released metric now scores: its values replace its earlier timeout failures
    store, run = hostile["store"], hostile["run"]
    assert (store.rows(run).scorer == "plugin:hangs").sum() == 12
    fails = store.failures(run)
    assert set(fails[fails.scorer == "plugin:hangs"].kind) == {"item"}  # unusable images only
    log = store.query("SELECT * FROM failures_log WHERE scorer = 'plugin:hangs'")
    assert (log.kind == "transient").sum() == 12  # the first attempt's failures stay logged


def test_a_reference_of_another_size_is_an_item_failure_for_fr_metrics(tmp_path):
    paths = [rgb(tmp_path / f"d{k}.png", k) for k in range(3)]
    refs = {"A": rgb(tmp_path / "refA.png", 10), "B": rgb(tmp_path / "refB.png", 11, (20, 12))}
    ds = IQASet("iqa", "all", [p.name for p in paths], reader=lambda i: read_image(paths[i]),
                scores=np.array([1.0, 2.0, 3.0]), label=LabelSpec("MOS", 0, 5, True),
                ref_ids=["A", "A", "B"], distortions=["x"] * 3, levels=np.array([1, 1, 1]),
                ref_paths=refs)
    store = Store(tmp_path / "store")
    run = store.begin_run({"job": "ref-size"})
    score(store, run, ds, grid([]), [MeanAbsError()], progress=False, workers=1)
    rows, fails = store.rows(run), store.failures(run)
    assert sorted(rows.item) == ["d0.png", "d1.png"]
    assert fails.item.tolist() == ["d2.png"] and fails.kind.tolist() == ["item"]
    assert "ReferenceSizeMismatch: reference (3, 12, 20) vs image (3, 16, 16)" in fails.reason[0]


def _truncate(path: Path, fraction: float) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])


@pytest.mark.parametrize("name, relpath, damage", [
    ("kadid10k", "kadid10k/dmos.csv", lambda p: _truncate(p, 0.5)),
    ("kadid10k", "kadid10k/dmos.csv", lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes())),
    ("koniq10k", "koniq10k_scores_and_distributions.csv", lambda p: _truncate(p, 0.5)),
    ("koniq10k", "koniq10k_scores_and_distributions.csv",
     lambda p: p.write_text("image_name,MOS\n\"826373.jpg,3.1\n")),
    ("live", "dmos.mat", lambda p: _truncate(p, 0.1)),
    ("live", "refnames_all.mat", lambda p: p.write_bytes(b"MATLAB 5.0 garbage")),
    ("tid2013", "mos_with_names.txt", lambda p: p.write_bytes("5,1 i01_01_1.bmp\n".encode(
        "utf-16"))),
    ("tid2013", "mos_with_names.txt", lambda p: p.write_text("5.1\n")),
])
def test_a_malformed_dataset_file_is_one_clear_error_naming_it(tmp_path, name, relpath, damage):
    root = WRITERS[name](tmp_path / name)
    damage(root / relpath)
    with pytest.raises(DatasetFormatError) as err:
        data.load(name, root=root)
    msg = str(err.value)
    assert "\n" not in msg and name in msg and Path(relpath).name in msg


class ZeroesItsInputs:
    """A plugin that overwrites the images it is given (in place)."""

    info = MetricInfo("plugin:vandal", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        images.mul_(0)
        return images.mean(dim=(1, 2, 3)).double()


def test_a_metric_that_overwrites_its_inputs_cannot_change_another_metrics_values(tmp_path):
    ds = data.load("scenes", split="test", size=24, n_train=10, n_val=10, n_test=6)
    values = {}
    for metrics in ([MeanBrightness(), MeanAbsError()],
                    [ZeroesItsInputs(), MeanBrightness(), MeanAbsError()]):
        store = Store(tmp_path / str(len(metrics)))
        run = store.begin_run({"job": "vandal"})
        score(store, run, ds, grid(["gaussian_noise"], [3]), metrics, progress=False, workers=1)
        rows = store.rows(run)
        values[len(metrics)] = rows[rows.scorer.str.startswith("toy:")].reset_index(drop=True)
    pd.testing.assert_frame_equal(values[2].drop(columns="run"), values[3].drop(columns="run"))


class Unhashable(MeanBrightness):
    """A metric with value equality (so unhashable); counts its calls."""

    calls = 0

    def __eq__(self, other):
        return isinstance(other, Unhashable)

    __hash__ = None

    def __call__(self, images, refs=None):
        Unhashable.calls += images.shape[0]
        return super().__call__(images, refs)


def test_an_unhashable_metric_is_checked_for_determinism_once_not_per_batch(tmp_path):
    ds = data.load("scenes", split="test", size=24, n_train=10, n_val=10, n_test=6)
    store = Store(tmp_path)
    run = store.begin_run({"job": "unhashable"})
    score(store, run, ds, grid(["gaussian_noise"], [3]), [Unhashable()], batch_size=2,
          progress=False, workers=1)
    assert len(store.rows(run)) == 12 and Unhashable.calls == 12 + 1


def exiting_factory():
    raise SystemExit("plugin gave up")


def test_a_plugin_that_exits_while_being_created_is_a_plugin_error():
    from qbench.metrics.registry import PluginError, create

    spec = f"{__name__}:exiting_factory"
    with pytest.raises(PluginError, match="creating the metric raised SystemExit"):
        create(spec)


def test_a_corruption_failing_on_one_image_fails_only_that_image(monkeypatch):
    import qbench.corrupt as corruptions
    from qbench.engine import guard

    real = corruptions.apply

    def fussy(images, name, severity, seed=0, table=None):
        if (images.flatten(1).amax(dim=1) == 0).any():
            raise ValueError("cannot corrupt a black image")
        return real(images, name, severity, seed=seed, table=table)

    monkeypatch.setattr(corruptions, "apply", fussy)
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    x[1] = 0
    out, failed = guard.corrupt(x, "gaussian_noise", 3, 5, None)
    assert list(failed) == [1] and failed[1].kind == "item" and "black image" in failed[1]
    for p in (0, 2):  # the others are corrupted exactly as on their own
        assert torch.equal(out[p], real(x[p : p + 1], "gaussian_noise", 3, seed=5)[0])
    _, all_failed = guard.corrupt(torch.zeros(2, 3, 8, 8), "gaussian_noise", 3, 5, None)
    assert {f.kind for f in all_failed.values()} == {"config"}  # no image proven at fault


def test_a_1x1_image_that_a_corruption_cannot_handle_is_recorded_and_the_run_goes_on(tmp_path):
    paths = [rgb(tmp_path / "tiny.png", 1, (1, 1))] + [rgb(tmp_path / f"ok{k}.png", k)
                                                       for k in range(2)]
    store = Store(tmp_path / "store")
    run = store.begin_run({"job": "tiny"})
    score(store, run, file_set(paths), grid(["elastic_transform"], [2], clean=False),
          [MeanBrightness()], progress=False, workers=1)
    rows, fails = store.rows(run), store.failures(run)
    assert sorted(rows.item) == ["ok0.png", "ok1.png"]
    assert fails.item.tolist() == ["tiny.png"]
    assert fails.reason[0].startswith("corruption failed: LinAlgError")
