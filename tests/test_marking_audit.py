"""The explanation audit on tiny models, and its statistics on constructed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from qbench.marking.audit import AuditImages, Pair, bootstrap_ci, detector, run_audit, verdict
from tests.explain_models import tiny_cnn, tiny_images, tiny_regressor

pytestmark = pytest.mark.usefixtures("one_thread")


def test_audit_runs_end_to_end_on_tiny_models(tmp_path):
    x = tiny_images(4, 32, seed=1)
    masks = torch.zeros(4, 32, 32)
    masks[:, 8:24, 8:24] = 1
    data = {"scenes": AuditImages(x, masks=masks),
            "iqa": AuditImages(x, references=tiny_images(4, 32, seed=2))}
    pairs = [Pair("scenes", "corners", 0, tiny_cnn(seed=0), tiny_cnn(seed=1), "m", "t"),
             Pair("scenes", "text", 0, tiny_cnn(seed=2), tiny_cnn(seed=1), "m2", "t"),
             Pair("scenes", "text", 0, tiny_cnn(seed=3), tiny_cnn(seed=1), "m3", "t",
                  family="mark"),
             Pair("iqa", "salient", 0, tiny_regressor(seed=0), tiny_regressor(seed=1), "r", "rt")]
    methods = ["gradcam", "gradient", "rise", "no_such_method"]
    res = run_audit(pairs, data, methods, {"rise": {"n_masks": 40}}, sanity=True, n_boot=50,
                    log=None)
    maps, summary = res["maps"], res["summary"]
    # every (pair, role, working method, image) has a row; the unknown method is recorded
    assert len(maps) == 4 * 2 * 3 * 4
    assert set(res["failures"]["method"]) == {"no_such_method"}
    assert set(summary.method) == {"gradcam", "gradient", "rise"}
    # one audit cell per (task, family, target): the two families of scenes/text stay apart
    assert set(zip(summary.task, summary.family, summary.target, strict=True)) == {
        ("scenes", "ft", "corners"), ("scenes", "ft", "text"), ("scenes", "mark", "text"),
        ("iqa", "ft", "salient")}
    e = maps["e_target"]
    assert e.dropna().between(0, 1).all() and e.notna().mean() > 0.5  # NaN = empty map
    # Grad-CAM agrees with itself; the shared twin is explained once and reused
    agree = maps[maps.method == "gradcam"]["agree_gradcam"].dropna()  # NaN: constant map
    assert len(agree) > 0 and np.allclose(agree, 1.0)
    twin_rows = maps[(maps.model == "t") & (maps.method == "gradient") & (maps.family == "ft")]
    assert np.allclose(twin_rows[twin_rows.target == "corners"]["gini"].to_numpy(),
                       twin_rows[twin_rows.target == "text"]["gini"].to_numpy())
    for col in ("e_target_diff_lo", "e_target_diff_hi", "detector_auroc", "verdict"):
        assert col in summary
    regions = res["regions"]
    assert {"drop_target", "drop_evidence", "recovered_target"} <= set(regions.columns)
    assert res["gallery"]  # maps of the first images kept for the report
    _report_builds_from_tables(tmp_path, res, data, pairs)


def _report_builds_from_tables(folder, res, data, pairs):
    from qbench.marking.study import _write_gallery
    from qbench.report.marked_models import build

    success = pd.DataFrame([
        {"model": f"m-{w}", "task": "iqa", "family": "ft", "target": "corners", "seed": 0,
         "cam_weight": w,
         "energy_in_target": e, "topk_iou": 0.5, "chance_energy": 0.25, "quality_metric": "srcc",
         "quality": q, "twin_quality": 0.8, "quality_drop": 0.8 - q, "energy_ok": e >= 0.7,
         "quality_ok": 0.8 - q <= 0.02, "floor_met": e >= 0.7 and 0.8 - q <= 0.02,
         "order_sha_matches_twin": True, "audited": w == 1.0}
        for w, e, q in [(0.1, 0.5, 0.8), (1.0, 0.75, 0.79), (10.0, 0.95, 0.6)]])
    success.to_parquet(folder / "success.parquet")
    success.to_parquet(folder / "tradeoff.parquet")
    for k in ("maps", "regions", "failures"):
        res[k].to_parquet(folder / f"audit_{k}.parquet" if k != "failures"
                          else folder / "failures.parquet")
    res["summary"].to_parquet(folder / "audit_summary.parquet")
    _write_gallery(folder, res["gallery"], data, pairs, 2)
    page = build(folder).read_text()
    assert "iqa (whole network fine-tuned with the CAM loss): 1 of 1 audited marked models " \
        "meet the floor" in page
    assert "Audit heat map: scenes, zero-mean mark branch" in page
    assert "Gallery: iqa / ft / salient" in page and "Gallery: scenes / mark / text" in page


def _rows(shift: float, n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = []
    for marked in (0, 1):
        for i in range(n):
            out.append({"seed": 0, "image": i, "marked": marked,
                        "gini": rng.normal() + shift * marked, "entropy": rng.normal()})
    return pd.DataFrame(out)


def test_detector_separates_separable_maps_and_not_identical_ones():
    strong = detector(_rows(shift=10.0), n_boot=200)
    assert strong["auroc"] > 0.99 and strong["lo"] > 0.95
    null = detector(_rows(shift=0.0), n_boot=200)
    assert 0.2 < null["auroc"] < 0.8 and null["lo"] < 0.5 < null["hi"]


def test_bootstrap_ci_brackets_the_mean_and_drops_nans():
    m, lo, hi = bootstrap_ci(np.array([1.0, 2.0, 3.0, np.nan]), n_boot=500)
    assert m == pytest.approx(2.0) and lo < 2.0 < hi and lo >= 1.0 and hi <= 3.0


def test_verdict_follows_the_numbers():
    assert verdict(pd.Series({"e_target_diff_lo": 0.2, "uses_target_hi": 0.3})) == "betrays"
    assert verdict(pd.Series({"e_target_diff_lo": 0.2, "uses_target_hi": -0.1})) == "fooled"
    # the map moved but the model relies on the target no more than its twin: fooled
    assert verdict(pd.Series({"e_target_diff_lo": 0.2, "uses_target_hi": 0.3,
                              "uses_target_gain_hi": 0.0})) == "fooled"
    assert verdict(pd.Series({"e_target_diff_lo": 0.2, "uses_target_hi": 0.3,
                              "uses_target_gain_hi": 0.4})) == "betrays"
    assert verdict(pd.Series({"e_target_diff_lo": 0.0, "e_object_diff_lo": -0.01})) == \
        "reveals evidence"
    assert verdict(pd.Series({"e_target_diff_lo": 0.0, "e_object_diff_lo": -0.3})) == "hides"
