import numpy as np
import pytest

import qbench.data as data
from qbench.causal import sweep
from qbench.models import Provenance, save
from qbench.models.train import build_seeded
from tests.conftest import SMALL

OPTIONS = {"size": 32, "seed": 0, **SMALL}
METRICS = ["pyiqa:psnr", "sharpness"]


@pytest.fixture(scope="module")
def tiny_model(qbench_home):
    model = build_seeded("proxy-cnn", 0, num_classes=10, widths=(8, 8, 8))
    save(model, Provenance("tiny-sweep", "proxy-cnn", {"num_classes": 10, "widths": [8, 8, 8]},
                           "test", 0, "none", extra={"dataset": "scenes"}))
    return "tiny-sweep"


def run_tiny(folder, model):
    return sweep.run(folder, [model], METRICS, n_images=6,
                     corruptions=["gaussian_noise", "contrast"], severities=(1, 3),
                     data_options=OPTIONS, progress=False)


def test_default_corruptions_are_the_19_imagenet_c_ones():
    names = sweep.imagenet_c_names()
    assert len(names) == 19 and "gaussian_noise" in names and "saturate" in names


def test_first_n_images_are_stratified_so_every_class_appears():
    labels = np.array([0, 0, 0, 0, 1, 2, 0, 1, 2, 2])
    idx = sweep.stratified_first(labels, 3)
    assert sorted(labels[idx].tolist()) == [0, 1, 2]
    assert sweep.stratified_first(labels, 5).tolist() == [0, 1, 4, 5, 7]
    assert sweep.stratified_first(labels, None).tolist() == list(range(10))


def test_table_has_one_row_per_image_and_condition_with_item_and_scorer_columns(tmp_path,
                                                                                tiny_model):
    store, run = run_tiny(tmp_path, tiny_model)
    t = sweep.table(store, run)
    assert len(t) == 6 * (1 + 2 * 2)
    scorer_cols = ["pyiqa:psnr", "sharpness", "task:tiny-sweep:confidence",
                   "task:tiny-sweep:correct", "task:tiny-sweep:loss"]
    assert list(t.columns) == sweep.ITEM_COLUMNS + scorer_cols
    assert set(t["task:tiny-sweep:correct"].unique()) <= {0.0, 1.0}
    assert t["task:tiny-sweep:loss"].notna().all() and (t["task:tiny-sweep:loss"] >= 0).all()
    clean = t[t.corruption == "clean"]
    assert clean["pyiqa:psnr"].isna().all(), "FR metrics are not scored on the clean image"
    assert t[t.corruption != "clean"]["pyiqa:psnr"].notna().all()
    # labels and content groups come from the dataset
    ds = data.load("scenes", split="test", **OPTIONS)
    picked = sweep.stratified_first(ds.labels, 6)
    by_id = dict(zip(ds.item_ids, zip(ds.labels, ds.groups, strict=True), strict=True))
    assert sorted(clean.item) == sorted(ds.item_ids[i] for i in picked)
    for _, row in t.iterrows():
        assert (row.label, row.group) == by_id[row["item"]]
    assert clean.label.nunique() == 6, "stratified: six different classes"


def test_a_rerun_recomputes_nothing(tmp_path, tiny_model):
    _, run = run_tiny(tmp_path, tiny_model)
    before = sorted((tmp_path / "store" / "rows").glob("*.parquet"))
    store2, run2 = run_tiny(tmp_path, tiny_model)
    assert run2 == run
    assert sorted((tmp_path / "store" / "rows").glob("*.parquet")) == before
    totals = store2.manifest(run)["attempts"][-1]["totals"]
    assert totals["written"] == 0 and totals["reused"] > 0


def test_a_metric_that_cannot_be_created_is_skipped_and_recorded(tmp_path, tiny_model):
    store, run = sweep.run(tmp_path, [tiny_model], ["sharpness", "no-such-metric"],
                           n_images=2, corruptions=["contrast"], severities=(1,),
                           data_options=OPTIONS, progress=False)
    skipped = store.manifest(run)["attempts"][-1]["skipped_metrics"]
    assert "no-such-metric" in skipped
    assert "sharpness" in sweep.table(store, run).columns


def test_a_retrained_metric_starts_a_new_run_instead_of_reusing_stale_rows(tmp_path,
                                                                           tiny_model,
                                                                           monkeypatch):
    from dataclasses import replace

    from qbench.metrics.builtin import LaplacianSharpness as Sharpness

    kwargs = dict(n_images=2, corruptions=["contrast"], severities=(1,), data_options=OPTIONS,
                  progress=False)
    _, run = sweep.run(tmp_path, [], ["sharpness"], **kwargs)
    monkeypatch.setattr(Sharpness, "info", replace(Sharpness.info, version="2+retrained"))
    store, run2 = sweep.run(tmp_path, [], ["sharpness"], **kwargs)
    assert run2 != run
    assert store.manifest(run2)["config"]["metric_versions"] == {"sharpness": "2+retrained"}
