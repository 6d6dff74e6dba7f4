"""The shared figure builders draw what the table says: right values, intervals, order,
counts in the hover, and nothing invented when a column is absent."""

import re

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from qbench.report import figures as F


def _curves() -> pd.DataFrame:
    rows = []
    for corr in ("blur", "noise", "jpeg"):
        for series in ("psnr", "ssim"):
            for sev in (1, 2, 3):
                v = {"psnr": 30.0, "ssim": 0.9}[series] - sev
                rows.append({"corruption": corr, "series": series, "severity": sev, "value": v,
                             "low": v - 0.5, "high": v + 0.25, "n": 7})
    return pd.DataFrame(rows)


def test_severity_curves_facet_draws_one_line_and_one_band_per_series_and_corruption():
    fig = F.severity_curves(_curves())
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(lines) == 6 and len(bands) == 6
    assert [a.text for a in fig.layout.annotations] == ["blur", "jpeg", "noise"]
    psnr_blur = next(t for t in lines if t.name == "psnr" and t.xaxis == "x")
    assert list(psnr_blur.y) == [29.0, 28.0, 27.0]
    assert "[28.5, 29.25] (n=7)" in psnr_blur.text[0]
    band = bands[0]  # upper edge forwards, lower edge backwards
    assert list(band.y) == [29.25, 28.25, 27.25, 26.5, 27.5, 28.5]


def test_severity_curves_without_interval_columns_draw_no_band():
    fig = F.severity_curves(_curves().drop(columns=["low", "high"]))
    assert not [t for t in fig.data if t.fill == "toself"]


def test_severity_curves_dropdown_shows_one_corruption_at_a_time():
    fig = F.severity_curves(_curves(), mode="dropdown")
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["blur", "jpeg", "noise"]
    for b in buttons:
        visible = b.args[0]["visible"]
        assert sum(visible) == 4  # two lines + two bands
        shown = {fig.data[i].name for i, v in enumerate(visible) if v and fig.data[i].name}
        assert shown == {"psnr", "ssim"}
    assert [t.visible for t in fig.data].count(True) == 4


def test_missing_column_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"lacks column.*severity"):
        F.severity_curves(_curves().drop(columns=["severity"]))


def test_scatter_error_bars_reach_the_interval_ends_on_both_axes():
    df = pd.DataFrame({"m": ["a", "b"], "x": [1.0, 2.0], "xl": [0.5, 1.9], "xh": [1.2, 3.0],
                       "y": [5.0, 6.0], "yl": [4.0, 5.5], "yh": [5.1, 7.0], "n": [10, 20]})
    fig = F.scatter_ci(df, x="x", y="y", label="m", x_low="xl", x_high="xh", y_low="yl",
                       y_high="yh", n="n")
    t = fig.data[0]
    np.testing.assert_allclose(t.error_x.array, [0.2, 1.0])
    np.testing.assert_allclose(t.error_x.arrayminus, [0.5, 0.1])
    np.testing.assert_allclose(t.error_y.array, [0.1, 1.0])
    np.testing.assert_allclose(t.error_y.arrayminus, [1.0, 0.5])
    assert "(n=20)" in t.text[1]


def test_ranking_bars_put_the_best_on_top_in_either_direction_and_nan_last():
    df = pd.DataFrame({"m": ["a", "b", "c", "d"], "v": [0.2, 0.9, np.nan, 0.5],
                       "lo": [0.1, 0.8, np.nan, 0.4], "hi": [0.3, 1.0, np.nan, 0.6]})
    top_down = list(F.ranking_bars(df, label="m", value="v", low="lo", high="hi").data[0].y)[::-1]
    assert top_down == ["b", "d", "a", "c"]
    lower = list(F.ranking_bars(df, label="m", value="v", higher_is_better=False).data[0].y)
    assert lower[::-1] == ["a", "d", "b", "c"]


def test_causal_graph_labels_edges_with_effects_and_scales_widths():
    g = nx.DiGraph()
    g.add_edge("blur", "quality", effect=-0.4, low=-0.5, high=-0.3)
    g.add_edge("quality", "accuracy", effect=0.8)
    g.add_edge("blur", "accuracy")
    fig = F.causal_graph(g)
    arrows = {(a.ax, a.ay, a.x, a.y): a for a in fig.layout.annotations if a.showarrow}
    labels = [a.text for a in fig.layout.annotations if not a.showarrow]
    assert sorted(labels) == ["+0.800", "-0.400"] and len(arrows) == 3
    widths = sorted(a.arrowwidth for a in arrows.values())
    assert widths == pytest.approx([1.0, 1.5 + 6 * 0.4 / 0.8, 7.5])
    colours = {a.arrowcolor for a in arrows.values()}
    assert colours == {"#3b6ea5", "#c0392b", "#aaa"}
    hover = fig.data[1].hovertext
    assert any("blur → quality: -0.400 [-0.500, -0.300]" in h for h in hover)


def test_sortable_table_shows_intervals_counts_and_escapes_text():
    df = pd.DataFrame({"metric": ["<b>x</b>", "y"], "srcc": [0.5, np.nan],
                       "srcc_low": [0.4, np.nan], "srcc_high": [0.6, np.nan], "n": [12, 3]})
    html = F.sortable_table(df, ci={"srcc": ("srcc_low", "srcc_high")}, labels={"n": "items"})
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "0.500 <span class='qb-ci'>[0.400, 0.600]</span>" in html
    assert ">n/a<" in html and ">items<" in html and ">12<" in html
    assert "srcc_low" not in html.split("<table")[1], "interval columns fold into their value"
    assert not re.search(r"src=|https?://", html), "no external script"
    assert html.count("onclick='qbSort(this)'") == 3


def test_sortable_table_links():
    df = pd.DataFrame({"name": ["a"], "href": ["a/report.html"]})
    html = F.sortable_table(df, links={"name": "href"})
    assert "<a href='a/report.html'>a</a>" in html


def _gallery() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    img = rng.random((3, 32, 40)).astype(np.float32)
    return pd.DataFrame({"row": ["im0", "im0", "im1"], "col": ["gradcam", "ig", "gradcam"],
                         "image": [img, img, img],
                         "map": [rng.random((8, 10)), rng.random((32, 40)), None],
                         "method": ["gradcam", "ig", "gradcam"], "score": [0.25, 0.5, 0.75]})


def test_image_gallery_overlays_maps_on_images_with_method_in_the_hover():
    fig = F.image_gallery(_gallery(), hover=["method", "score"], map_side=16)
    images = [t for t in fig.data if t.type == "image"]
    maps = [t for t in fig.data if t.type == "heatmap"]
    assert len(images) == 3 and len(maps) == 2
    assert all(t.source.startswith("data:image/png;base64,") for t in images)
    assert "method: gradcam" in maps[0].hovertemplate and "score: 0.25" in maps[0].hovertemplate
    assert np.asarray(maps[1].z).shape == (10, 13)  # 32x40 block-averaged by 3 (<= 16 a side)
    # a coarse map is stretched over the whole image
    assert maps[0].dx == pytest.approx(4.0) and maps[0].x0 == pytest.approx(1.5)
    hover_only = [t for t in fig.data if t.type == "scatter"]
    assert len(hover_only) == 1 and "score: 0.75" in hover_only[0].hovertemplate


def test_pareto_front_respects_directions():
    x = np.array([1.0, 2.0, 3.0, 2.0])
    y = np.array([3.0, 2.0, 1.0, 1.0])
    assert F.pareto_front(x, y).tolist() == [True, True, True, False]
    assert F.pareto_front(x, y, higher_x_better=False, higher_y_better=False).tolist() == [
        True, False, False, True]


def test_tradeoff_curve_joins_points_in_x_order_and_rings_the_front():
    df = pd.DataFrame({"t": ["q0.2", "q0.8", "q0.5"], "kept": [0.9, 0.2, 0.5],
                       "acc": [0.6, 0.9, 0.7]})
    fig = F.tradeoff_curve(df, x="kept", y="acc", label="t", higher_x_better=True,
                           higher_y_better=True)
    assert list(fig.data[0].text) == ["q0.8", "q0.5", "q0.2"]
    assert len(fig.data[1].x) == 3  # each point is optimal on one side of the trade-off


def test_heatmap_places_values_and_leaves_missing_cells_blank():
    df = pd.DataFrame({"method": ["a", "a", "b"], "check": ["x", "y", "x"],
                       "v": [0.1, 0.5, -0.3], "n": [3, 4, 5]})
    fig = F.heatmap(df, row="method", col="check", value="v", n="n")
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z[0].tolist() == [0.1, 0.5] and z[1, 0] == -0.3 and np.isnan(z[1, 1])
    assert fig.data[0].text[1][0] == "-0.30"
    assert fig.data[0].customdata[0][1] == "a · y: 0.50 (n=4)"
    with pytest.raises(ValueError, match="more than one"):
        F.heatmap(pd.concat([df, df]), row="method", col="check", value="v")


def test_severity_curves_legend_lists_each_series_once_even_if_missing_in_the_first_panel():
    df = _curves()
    df = df[~((df.corruption == "blur") & (df.series == "ssim"))]
    fig = F.severity_curves(df)
    legend = [t.name for t in fig.data if t.showlegend]
    assert sorted(legend) == ["psnr", "ssim"]
