"""Causal analysis on a synthetic sweep table with planted effects (qbench.causal)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from qbench.causal.alignment import Alignment, WithinContentAUROC
from qbench.causal.effects import estimate_effects
from qbench.causal.frame import oriented
from qbench.causal.graph import IMAGE, stated_graph, write_gml
from qbench.causal.synthetic import planted_table

STRENGTHS = {"blur": 1.0, "noise": 0.6, "tint": 0.15}


@pytest.fixture(scope="module")
def planted():
    return planted_table(n_items=60, n_groups=12, strengths=STRENGTHS, severities=(1, 3, 5),
                         seed=0)


@pytest.fixture(scope="module")
def effects(planted):
    df, info, _ = planted
    df = df[df["corruption"].isin(["clean", "blur", "tint"])]  # refuters are the slow part
    return estimate_effects(df, info, metrics=["aligned", "aligned_low", "noise"],
                            refute_accuracy_severities=(5,), refute_metric_severities=(5,),
                            num_simulations=8, n_boot=200, seed=0, progress=False)


def test_planted_metric_effect_has_right_sign_and_magnitude(planted, effects):
    _, _, truth = planted
    m = effects.merge(truth, on=["outcome", "corruption", "severity"])
    aligned = m[m["outcome"] == "aligned"]
    assert (aligned["estimate"] < 0).all()
    assert np.abs(aligned["estimate"] - aligned["effect"]).max() < 0.1  # noise sd 0.1
    # lower-is-better metric: stored effect positive, oriented (quality) effect negative
    low = m[m["outcome"] == "aligned_low"]
    assert (low["estimate"] > 0).all() and (low["oriented_effect"] < 0).all()


def test_planted_accuracy_drop_is_recovered_and_matches_paired_mean(planted, effects):
    _, _, truth = planted
    acc = effects[effects["outcome"] == "accuracy"].merge(
        truth, on=["outcome", "corruption", "severity"])
    blur5 = acc[(acc["corruption"] == "blur") & (acc["severity"] == 5)].iloc[0]
    assert blur5["estimate"] < -0.4
    assert abs(blur5["estimate"] - blur5["effect"]) < 0.15  # 60 items x 2 models
    assert blur5["low"] < blur5["estimate"] < blur5["high"]
    # on the matched design DoWhy's regression equals the mean paired change
    assert np.allclose(acc["estimate"], acc["paired_mean"], atol=1e-9)
    assert set(acc["backdoor_set"].fillna("")) == {""}


def test_placebo_refuter_effect_is_near_zero_and_passes(effects):
    refuted = effects.dropna(subset=["placebo_p"])
    assert len(refuted) == 2 * (1 + 3)  # accuracy and 3 metrics at severity 5, 2 corruptions
    big = refuted[refuted["outcome"].isin(["accuracy", "aligned"])
                  & (refuted["corruption"] == "blur")]
    for _, r in big.iterrows():
        assert abs(r["placebo_effect"]) < 0.1 * abs(r["estimate"])
        assert r["placebo_p"] > 0.05
        assert abs(r["subset_effect"] - r["estimate"]) < 0.1 * abs(r["estimate"])


def test_alignment_of_tracking_metric_beats_noise_and_respects_direction(planted):
    df, info, _ = planted
    a = Alignment(df, info, n_boot=300, seed=0)
    t = a.table().set_index(["metric", "target"])
    rho = t.xs("accuracy", level="target")["alignment"]
    assert rho["aligned"] > 0.8 and rho["aligned_low"] > 0.8 and rho["fr"] > 0.8
    assert rho["aligned"] > rho["noise"] + 0.3
    assert rho["misaligned"] < rho["aligned"]
    d = a.difference("aligned", "noise")
    assert d["low"] > 0  # paired bootstrap CI excludes 0
    lo, hi = t.loc[("aligned", "accuracy"), ["low", "high"]]
    assert lo <= rho["aligned"] <= hi


def test_alignment_bootstrap_is_seeded(planted):
    df, info, _ = planted
    t1 = Alignment(df, info, ["aligned"], n_boot=100, seed=3).table()
    t2 = Alignment(df, info, ["aligned"], n_boot=100, seed=3).table()
    pd.testing.assert_frame_equal(t1, t2)


def _perfect_table() -> tuple[pd.DataFrame, dict]:
    """Correctness known per row; the metric = correct + a large per-group offset, so it
    ranks perfectly within every group but not across groups."""
    rng = np.random.default_rng(1)
    rows = []
    for g in range(6):
        for i in range(10):
            for c in ("clean", "blur"):
                for s in ((0,) if c == "clean" else (1, 2)):
                    y = float(rng.random() < 0.5)
                    rows.append({"item": f"g{g}i{i}", "label": 0, "group": g, "corruption": c,
                                 "severity": s, "task:m:correct": y,
                                 "perfect": y + 10.0 * (g % 3) + rng.random() * 0.5,
                                 "perfect_low": -(y + 10.0 * (g % 3))})
    info = {"perfect": {"kind": "NR", "higher_is_better": True},
            "perfect_low": {"kind": "NR", "higher_is_better": False}}
    return pd.DataFrame(rows), info


def test_auroc_of_perfect_within_group_predictor_is_one():
    df, info = _perfect_table()
    t = WithinContentAUROC(df, info, n_boot=200, seed=0).table().set_index(["metric", "target"])
    for m in ("perfect", "perfect_low"):
        assert t.loc[(m, "m"), "auroc"] == pytest.approx(1.0)
        assert t.loc[(m, "m"), "low"] == pytest.approx(1.0)
        assert t.loc[(m, "accuracy"), "auroc"] == pytest.approx(1.0)
    assert t.loc[("perfect", "m"), "pooled_auroc"] < 0.95  # the groups' offsets mix pooled


def test_auroc_of_noise_is_near_chance(planted):
    df, info, _ = planted
    t = WithinContentAUROC(df, info, ["noise", "aligned"], n_boot=200, seed=0).table()
    t = t[t["target"] == "accuracy"].set_index("metric")
    assert abs(t.loc["noise", "auroc"] - 0.5) < 0.07
    assert t.loc["aligned", "auroc"] > 0.65


def test_oriented_never_takes_absolute_values():
    v = np.array([-2.0, 3.0])
    assert list(oriented(v, True)) == [-2.0, 3.0]
    assert list(oriented(v, False)) == [2.0, -3.0]


def test_stated_graph_has_unobserved_image_and_round_trips_gml(tmp_path):
    g = stated_graph(["accuracy", "pyiqa:psnr"])
    assert g.nodes[IMAGE]["observed"] is False
    assert set(g.predecessors(IMAGE)) == {"content", "corruption", "severity"}
    assert set(g.successors(IMAGE)) == {"accuracy", "pyiqa:psnr"}
    back = nx.read_gml(write_gml(g, tmp_path / "g.gml"))
    assert set(back.edges) == set(g.edges)


def test_gcm_attributes_a_severity_only_metric_to_severity():
    from qbench.causal.attribution import arrow_strengths

    df, info, _ = planted_table(n_items=30, n_groups=6, severities=(1, 3, 5), seed=2)
    rng = np.random.default_rng(0)
    df["sev_only"] = -df["severity"] + rng.normal(0, 0.05, len(df))
    info["sev_only"] = {"kind": "NR", "higher_is_better": True}
    t = arrow_strengths(df, info, ["sev_only"], max_rows=400, num_samples=200, max_runs=5)
    s = t[t["outcome"] == "sev_only"].set_index("factor")["share"]
    assert s["severity"] > 0.8
    assert set(t["outcome"]) == {"accuracy", "sev_only"}


def test_analysis_tables_feed_a_report_whose_summary_quotes_them(tmp_path):
    import json

    from qbench.causal.analysis import analyze
    from qbench.report.quality_vs_accuracy import build

    df, info, _ = planted_table(n_items=24, n_groups=6, strengths={"blur": 1.0, "tint": 0.1},
                                severities=(1, 3, 5), seed=4)
    tables = analyze(df, info, tmp_path, aligned=("aligned",), n_boot=50,
                     refute_accuracy_severities=(5,), refute_metric_severities=(),
                     num_simulations=3, gcm_rows=300,
                     gcm_options={"num_samples": 100, "max_runs": 3}, progress=False)
    for name in ("effects", "alignment", "auroc", "profiles", "means", "attribution",
                 "comparisons"):
        assert (tmp_path / f"{name}.parquet").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["metrics"]) == set(tables["alignment"]["metric"])
    for metric, entry in summary["metrics"].items():
        al = tables["alignment"]
        row = al[(al["metric"] == metric) & (al["target"] == "accuracy")].iloc[0]
        assert entry["alignment"]["accuracy"] == {"value": pytest.approx(row["alignment"]),
                                                  "low": pytest.approx(row["low"]),
                                                  "high": pytest.approx(row["high"])}
        assert set(entry["auroc"]["accuracy"]) == {"value", "low", "high"}
    refuted = tables["effects"].dropna(subset=["placebo_p"])
    assert summary["refuters"]["refuted"] == len(refuted) > 0
    assert {"placebo_p", "random_cause_p", "subset_p"} <= set(summary["refuters"]["estimates"][0])
    (tmp_path / "study.json").write_text(json.dumps({"study": "quality_vs_accuracy",
                                                     "preset": "test", "seed": 0}))
    text = build(tmp_path).read_text()
    al = tables["alignment"].query("target == 'accuracy' and category == 'conventional'")
    best = al.sort_values("alignment", ascending=False).iloc[0]
    assert f"best {best['metric']} at {best['alignment']:.2f}" in text
    assert "Task-aligned aligned: alignment" in text
    assert text.count("plotly.js") >= 1 or "Plotly" in text
