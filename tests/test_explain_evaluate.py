"""Explanation metrics on constructed inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from qbench.explain import evaluate as ev
from tests.explain_models import tiny_cnn, tiny_images
from tests.planted_models import PlantedModel, noise_images

pytestmark = pytest.mark.usefixtures("one_thread")


def _square_mask(n=1, size=16, lo=4, hi=8):
    m = torch.zeros(n, size, size)
    m[:, lo:hi, lo:hi] = 1
    return m


# ---------------------------------------------------------------- localisation


def test_pointing_game_hits_misses_and_ties_exactly():
    mask = _square_mask(4)
    maps = torch.zeros(4, 16, 16)
    maps[0, 5, 5] = 1  # peak on the object
    maps[1, 12, 12] = 1  # peak off the object
    maps[2, 5, 5] = maps[2, 12, 12] = 1  # tie: one of two maxima on the object
    # maps[3] constant: every pixel is a maximum -> the object's share of the image
    assert ev.pointing_game(maps, mask).tolist() == [1.0, 0.0, 0.5, 16 / 256]


def test_pointing_game_tolerance_and_uint8_masks():
    mask = (_square_mask(1) * 255).to(torch.uint8)
    maps = torch.zeros(1, 16, 16)
    maps[0, 10, 5] = 1  # 3 px below the object's last row (7)
    assert ev.pointing_game(maps, mask).item() == 0.0
    assert ev.pointing_game(maps, mask, tolerance=2).item() == 0.0
    assert ev.pointing_game(maps, mask, tolerance=3).item() == 1.0


def test_energy_pointing_game_known_shares():
    mask = _square_mask(2)
    maps = torch.zeros(2, 16, 16)
    maps[0, 4:8, 4:8] = 1.0
    maps[0, 0, 0:16] = 1.0  # 16 px on, 16 px off the object
    maps[1] = 2.0  # constant map: no energy after normalisation
    e = ev.energy_pointing_game(maps, mask)
    assert e[0].item() == pytest.approx(0.5)
    assert math.isnan(e[1].item())
    raw = ev.energy_pointing_game(maps, mask, normalize=False)
    assert raw[1].item() == pytest.approx(16 / 256)


def test_masks_of_another_shape_are_refused():
    with pytest.raises(ValueError, match="shape"):
        ev.pointing_game(torch.zeros(1, 8, 8), torch.zeros(1, 9, 9))


# ---------------------------------------------------------------- complexity


def test_gini_entropy_and_total_variation_known_values():
    n = 64
    uniform = torch.ones(1, 8, 8)
    one_hot = torch.zeros(1, 8, 8)
    one_hot[0, 3, 3] = 5.0
    maps = torch.cat([uniform, one_hot])
    assert ev.gini(maps).tolist() == pytest.approx([0.0, (n - 1) / n], abs=1e-6)
    assert ev.entropy(maps).tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    assert ev.entropy(maps, normalized=False)[0].item() == pytest.approx(math.log(n), abs=1e-5)
    checker = ((torch.arange(8)[:, None] + torch.arange(8)[None]) % 2).float()[None]
    tv = ev.total_variation(torch.cat([uniform, checker]))
    assert tv.tolist() == pytest.approx([0.0, 1.0])
    assert math.isnan(ev.gini(torch.zeros(1, 4, 4)).item())


# ---------------------------------------------------------------- faithfulness


class MeanBrightness(nn.Module):
    """A scalar output: the image's mean value (deleting k of n pixels of a white image with
    black leaves 1 − k/n, a straight line whose trapezoid AUC is exactly 0.5)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.w * x.mean((1, 2, 3))


def test_deletion_and_insertion_auc_of_a_linear_score_are_one_half():
    model, x = MeanBrightness(), torch.ones(2, 3, 8, 8)
    maps = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
    d = ev.deletion_insertion(model, x, maps, mode="deletion", substitute="zero", step=5)
    assert d.auc.tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    assert d.fractions[0] == 0 and d.fractions[-1] == 1 and d.scores.shape == (2, 14)
    i = ev.insertion_auc(model, x, maps, substitute="zero")
    assert i.tolist() == pytest.approx([0.5, 0.5], abs=1e-6)


def test_deletion_follows_the_map_order():
    model = PlantedModel().eval()
    x = noise_images(2)
    target = torch.zeros(2, dtype=torch.long)
    good = model.region.expand(2, 32, 32).clone()
    bad = 1 - good
    for sub in ("zero", "mean", "blur", "noise"):
        d_good = ev.deletion_auc(model, x, good, target, substitute=sub)
        d_bad = ev.deletion_auc(model, x, bad, target, substitute=sub)
        assert (d_good < d_bad).all(), sub
    assert (ev.insertion_auc(model, x, good, target) > ev.insertion_auc(model, x, bad, target)
            ).all()


def test_bernoulli_kl_and_class_distortion_known_answers():
    p, q = torch.tensor([0.9, 0.5]), torch.tensor([0.6, 0.5])
    expect = 0.9 * math.log(0.9 / 0.6) + 0.1 * math.log(0.1 / 0.4)
    assert ev.bernoulli_kl(p, q).tolist() == pytest.approx([expect, 0.0])

    model = PlantedModel().eval()  # deleting the region moves class 0 and 1, never class 2
    x = noise_images(2)
    region = model.region.expand(2, 32, 32)
    out = ev.class_distortion(model, x, region, torch.zeros(2, dtype=torch.long),
                              fraction=144 / 1024, substitute="blur")
    with torch.no_grad():
        p = model(x).softmax(1)
        q = model(ev.delete_top(x, region, 144 / 1024, "blur")).softmax(1)
    kl = ev.bernoulli_kl(p, q)
    assert out["kl_target"].tolist() == pytest.approx(kl[:, 0].tolist(), rel=1e-5)
    assert out["kl_nontarget"].tolist() == pytest.approx(kl[:, 1:].mean(1).tolist(), rel=1e-5)
    cds = torch.log(kl[:, 0] / kl[:, 1:].mean(1) + 1)
    assert out["cds"].tolist() == pytest.approx(cds.tolist(), rel=1e-5)


# ---------------------------------------------------------------- randomisation


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_cascading_randomisation_changes_layers_top_down_and_spares_the_original():
    model = tiny_cnn()
    before = _params(model)
    layers = [name for name, _ in ev.parameter_layers(model)]
    assert layers == ["features.0", "features.3", "features.6", "head"]
    seen = []
    for name, rmodel in ev.randomized_models(model, "cascading", seed=0):
        seen.append(name)
        after = _params(rmodel)
        for lname in layers:
            same = torch.equal(after[f"{lname}.weight"], before[f"{lname}.weight"])
            assert same == (lname not in seen), (name, lname)
    assert seen == layers[::-1]
    assert all(torch.equal(v, before[k]) for k, v in _params(model).items())


def test_independent_randomisation_changes_one_layer_with_the_cascades_draws():
    model = tiny_cnn()
    before = _params(model)
    cascade = {n: _params(m) for n, m in ev.randomized_models(model, "cascading", seed=0)}
    for name, rmodel in ev.randomized_models(model, "independent", seed=0):
        after = _params(rmodel)
        changed = {k.rsplit(".", 1)[0] for k in after if not torch.equal(after[k], before[k])}
        assert changed == {name}
        assert torch.equal(after[f"{name}.weight"], cascade[name][f"{name}.weight"])
    assert all(torch.equal(v, before[k]) for k, v in _params(model).items())


def test_map_similarity_is_one_for_identical_maps_and_low_for_unrelated():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2, 16, 16, generator=gen)
    same = ev.map_similarity(a, a)
    for key in ("spearman", "spearman_abs", "ssim", "hog"):
        assert np.allclose(same[key], 1.0), key
    other = ev.map_similarity(a, torch.rand(2, 16, 16, generator=gen))
    assert (np.abs(other["spearman"]) < 0.3).all()
    signed = ev.map_similarity(a - 0.5, -(a - 0.5))
    assert np.allclose(signed["spearman"], -1.0)
    assert (signed["spearman_abs"] > 0.99).all()  # |−m| = |m|


def test_sanity_check_rows_cover_every_layer_and_image():
    model, x = tiny_cnn(), tiny_images(2, 32)
    rows = ev.sanity_check(model, x, "rise", mode="independent", n_masks=32)
    assert len(rows) == 4 * 2
    assert {r["layer"] for r in rows} == {"features.0", "features.3", "features.6", "head"}
    assert all(-1.0 <= r["spearman"] <= 1.0 for r in rows)


# ---------------------------------------------------------------- resolution and the suite


def test_fine_detail_separates_upsampled_coarse_maps_from_pixel_detail():
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    coarse = F.interpolate(torch.rand(2, 1, 8, 8, generator=gen), size=(64, 64),
                           mode="bilinear", align_corners=False)[:, 0]
    fine = torch.rand(2, 64, 64, generator=gen)
    assert (ev.fine_detail(coarse, cell=8) < 0.25).all()
    assert (ev.fine_detail(fine, cell=8) > 0.9).all()
    assert math.isnan(ev.fine_detail(torch.ones(1, 16, 16), cell=4).item())


def test_paired_comparison_verdicts_follow_the_metric_direction():
    import pandas as pd

    from qbench.explain.evaluate.suite import compare, summarize

    rows = pd.DataFrame(
        [{"model": "m", "method": meth, "image": i, "metric": "deletion_auc_zero",
          "value": base + 0.01 * (i % 3)}
         for i in range(20) for meth, base in (("a", 0.2), ("b", 0.5))])
    c = compare(rows, "m", "a", "b", "deletion_auc_zero", higher_is_better=False)
    assert c["verdict"] == "better" and c["diff"] == pytest.approx(-0.3)
    assert c["low"] == pytest.approx(-0.3) and c["high"] == pytest.approx(-0.3)
    assert compare(rows, "m", "a", "b", "deletion_auc_zero", True)["verdict"] == "worse"
    s = summarize(rows)
    a = s[s["method"] == "a"].iloc[0]
    assert a["low"] <= a["value"] <= a["high"] and a["n"] == 20


def _suite_case(n: int):
    """A tiny model, n images with a square object mask, and a suite of two methods and one
    that does not exist."""
    from qbench.explain.evaluate.suite import SuiteConfig

    model, x = tiny_cnn(), tiny_images(n, 32)
    masks = torch.zeros(n, 32, 32)
    masks[:, 8:20, 8:20] = 1
    cfg = SuiteConfig(methods=["gradcam", "rise", "no_such_method"],
                      options={"rise": {"n_masks": 16}}, game_step=256,
                      sanity_methods=("gradcam",))
    return model, x, masks, cfg


def test_suite_tables_build_a_report_whose_summary_follows_the_numbers(tmp_path):
    import json

    import pandas as pd

    from qbench.explain.evaluate.suite import compare, evaluate_methods, summarize
    from qbench.report.explainers import build

    model, x, masks, cfg = _suite_case(3)
    rows, maps, sanity, failures = evaluate_methods(model, "tiny", x, masks, cfg,
                                                    progress=lambda *_: None)
    assert set(maps) == {"gradcam", "rise"} and maps["rise"].shape == (3, 32, 32)
    assert [f["method"] for f in failures] == ["no_such_method"]
    assert set(sanity["layer"]) == {"features.0", "features.3", "features.6", "head"}
    per_metric = rows.groupby(["method", "metric"]).size()
    assert (per_metric == 3).all() and ("rise", "deletion_auc_zero") in per_metric.index
    rows.to_parquet(tmp_path / "per_image.parquet")
    summarize(rows, n_boot=50).to_parquet(tmp_path / "summary.parquet")
    sanity.to_parquet(tmp_path / "sanity.parquet")
    comps = [compare(rows, "tiny", "rise", "gradcam", "deletion_auc_zero", False, n_boot=50)]
    pd.DataFrame(comps).to_parquet(tmp_path / "comparisons.parquet")
    (tmp_path / "failures.json").write_text(json.dumps(failures))
    (tmp_path / "study.json").write_text(json.dumps({
        "study": "explainers", "preset": "test", "seed": 0, "git_revision": "abc",
        "seconds": 1.0, "config": {"methods": cfg.methods, "models": ["tiny"], "images": 3}}))
    html = build(tmp_path).read_text()
    assert "3 explanation methods on 1 scenes classifier(s)" in html
    assert "1 method run(s) failed" in html and "no_such_method" in html


def test_an_interrupted_suite_resumes_from_finished_methods_and_recomputes_stale_ones(tmp_path):
    import pandas as pd

    from qbench.explain.evaluate.suite import evaluate_methods

    model, x, masks, cfg = _suite_case(2)
    said: list[str] = []
    first = evaluate_methods(model, "tiny", x, masks, cfg, progress=said.append,
                             cache=tmp_path)
    assert not any("resumed" in s for s in said)
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["gradcam", "rise"]

    said.clear()
    again = evaluate_methods(model, "tiny", x, masks, cfg, progress=said.append, cache=tmp_path)
    assert [s.split(":")[0].strip() for s in said if "resumed" in s] == ["gradcam", "rise"]
    assert any("no_such_method: FAILED" in s for s in said)  # a failure is retried, not kept
    for a, b in ((first[0], again[0]), (first[2], again[2])):  # metric rows, sanity rows
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert np.array_equal(first[1]["rise"], again[1]["rise"])

    said.clear()
    cfg.options["rise"]["n_masks"] = 24  # rise's key changes; gradcam's does not
    evaluate_methods(model, "tiny", x, masks, cfg, progress=said.append, cache=tmp_path)
    assert [s.split(":")[0].strip() for s in said if "resumed" in s] == ["gradcam"]

    said.clear()
    with torch.no_grad():
        model.head.weight.add_(0.1)  # other weights: nothing is reused
    evaluate_methods(model, "tiny", x, masks, cfg, progress=said.append, cache=tmp_path)
    assert not any("resumed" in s for s in said)


def test_sanity_checks_can_run_on_fewer_images_with_their_own_options():
    from qbench.explain.evaluate.suite import SuiteConfig, evaluate_methods

    model, x = tiny_cnn(), tiny_images(3, 32)
    masks = torch.zeros(3, 32, 32)
    cfg = SuiteConfig(methods=["rise"], options={"rise": {"n_masks": 16}}, game_step=512,
                      sanity_methods=("rise",), sanity_images=2,
                      sanity_options={"rise": {"n_masks": 8, "no_such_option": 1}})
    rows, _, sanity, failures = evaluate_methods(model, "tiny", x, masks, cfg,
                                                 progress=lambda *_: None)
    assert rows["image"].nunique() == 3  # the maps and their metrics: every image
    assert sanity.empty and failures[0]["stage"] == "sanity/cascading"  # the override arrived
    cfg.sanity_options = {"rise": {"n_masks": 8}}
    _, _, sanity, failures = evaluate_methods(model, "tiny", x, masks, cfg,
                                              progress=lambda *_: None)
    assert not failures and sorted(sanity["image"].unique()) == [0, 1]


def test_sanity_table_reads_cascading_at_full_depth_and_independent_per_layer():
    import pandas as pd

    from qbench.report.explainers import sanity_table

    rows = []
    for mode in ("cascading", "independent"):
        for depth, layer in enumerate(["head", "conv2", "conv1"], start=1):
            for image in range(2):
                v = {"cascading": 1.0 - 0.3 * depth, "independent": 0.1 * depth}[mode]
                rows.append({"model": "m", "method": "gradcam", "mode": mode, "depth": depth,
                             "layer": layer, "image": image, "spearman": v,
                             "spearman_abs": v, "ssim": v, "hog": v})
    t = sanity_table(pd.DataFrame(rows)).set_index("reading")
    assert t.loc["cascading, all layers", "layer"] == "conv1"
    assert t.loc["cascading, all layers", "spearman"] == pytest.approx(0.1)
    assert t.loc["independent, mean over layers", "spearman"] == pytest.approx(0.2)
    assert t.loc["independent, most similar layer", "layer"] == "conv1"
    assert t.loc["independent, most similar layer", "spearman_abs"] == pytest.approx(0.3)
