"""The RankIQA study's page, built from its tables only (no recomputation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from qbench.report import figures
from qbench.report.html import note, page, write_page

MODELS = ["untrained", "rankiqa", "scratch-on-target", "rankiqa-ft"]
# Liu et al. 2017: TID2013 SROCC and the levels ablation (LCC on LIVE after fine-tuning)
PAPER = ("Paper (Liu et al. 2017): on TID2013 SROCC, ImageNet-VGG baseline .612 < RankIQA .623 "
         "< RankIQA+FT .780; ablation over 2-6 levels: LCC .73/.75/.82/.85/.84 (more levels "
         "help up to 5).")


def _short(t: str) -> str:
    return t.split(":", 1)[-1]


def summary(meta: dict, ranking: pd.DataFrame, corr: pd.DataFrame, abl: pd.DataFrame) -> str:
    first = meta["config"]["sets"][0]
    split = meta["splits"][first]
    r = ranking[(ranking.set == first) & (ranking.type == "all")].set_index("model")
    acc = {m: float(r.loc[m, "accuracy"]) for m in MODELS if m in r.index}
    pairs = int(r["pairs"].iloc[0]) if len(r) else 0
    c = corr[corr.set == first].set_index("model")
    s = {m: float(c.loc[m, "srcc"]) for m in MODELS if m in c.index}
    p = {m: float(c.loc[m, "plcc"]) for m in MODELS if m in c.index}
    text = (f"On {len(split['test_refs'])} held-out references ({', '.join(split['test_refs'])}"
            f"; {pairs} level pairs of the RankIQA {first.upper()} set), RankIQA ordered "
            f"{acc['rankiqa']:.1%} of pairs correctly; an untrained network {acc['untrained']:.1%}"
            f", the same network trained directly on the fine-tuning target "
            f"{acc['scratch-on-target']:.1%}, RankIQA after fine-tuning {acc['rankiqa-ft']:.1%}. "
            f"Against the fine-tuning target on held-out references ({split['ground_truth']}; "
            f"n = {int(c['n'].iloc[0])}), SRCC/PLCC went from {s['rankiqa']:.3f}/"
            f"{p['rankiqa']:.3f} before fine-tuning to {s['rankiqa-ft']:.3f}/"
            f"{p['rankiqa-ft']:.3f} after (trained on the target from scratch: "
            f"{s['scratch-on-target']:.3f}/{p['scratch-on-target']:.3f}; untrained "
            f"{s['untrained']:.3f}). ")
    ft_gain, pre_gain = s["rankiqa-ft"] - s["rankiqa"], s["rankiqa-ft"] - s["scratch-on-target"]
    text += (f"Fine-tuning {'raised' if ft_gain > 0 else 'did not raise'} SRCC "
             f"({ft_gain:+.3f}) and ranking pre-training "
             f"{'helped' if pre_gain > 0 else 'did not help'} against training from scratch "
             f"({pre_gain:+.3f}); the paper reports both effects positive. ")
    ft_types = ranking[(ranking.set == first) & (ranking.model == "rankiqa-ft")
                       & (ranking.type != "all")]
    if len(ft_types) and acc["rankiqa-ft"] < acc["rankiqa"]:
        worst = ft_types.loc[ft_types.accuracy.idxmin()]
        text += (f"Fine-tuning cost within-reference ranking: held-out pair accuracy fell from "
                 f"{acc['rankiqa']:.1%} to {acc['rankiqa-ft']:.1%} (worst type: "
                 f"{_short(worst['type'])} at {worst.accuracy:.1%}"
                 f"{', below chance, i.e. the order is reversed' if worst.accuracy < 0.5 else ''}"
                 "); the target compares different images, and what predicts it across images "
                 "need not order one image's distortion levels. ")
    if len(abl):
        a = abl.sort_values("levels")
        best = int(a.loc[a.accuracy.idxmax(), "levels"])
        text += (f"Levels ablation: held-out pair accuracy "
                 f"{'/'.join(f'{v:.2f}' for v in a.accuracy)} for "
                 f"{'/'.join(str(v) for v in a.levels)} levels (best: {best}); the paper's "
                 "LCC rises from 2 to 5 levels and dips at 6.")
    return text


def build(folder: str | Path) -> Path:
    folder = Path(folder)
    meta = json.loads((folder / "study.json").read_text())
    ranking = pd.read_parquet(folder / "ranking.parquet")
    corr = pd.read_parquet(folder / "correlations.parquet")
    abl = pd.read_parquet(folder / "ablation.parquet")
    curves = pd.read_parquet(folder / "training.parquet")
    sections: list = []
    for which in meta["config"]["sets"]:
        r = ranking[ranking.set == which].assign(type=lambda d: d["type"].map(_short))
        sections.append((f"Held-out ranking accuracy per distortion type ({which} set)",
                         note("Share of correctly ordered level pairs (pristine included) "
                              "within each held-out reference and type; ties count 1/2; "
                              "0.5 is chance.")))
        sections.append(("", figures.heatmap(r, row="model", col="type", value="accuracy",
                                             n="pairs", zmin=0, zmax=1, zmid=0.5,
                                             row_order=MODELS, colorscale="RdBu")))
        c = corr[corr.set == which]
        sections.append((f"Agreement with the fine-tuning target ({which} set)",
                         note(meta["splits"][which]["ground_truth"])))
        sections.append(("", figures.ranking_bars(c, label="model", value="srcc", n="n",
                                                  value_title="SRCC on held-out references")))
        sections.append(("", figures.sortable_table(c, columns=["model", "srcc", "plcc", "n"])))
    if len(abl):
        long = abl.melt(id_vars=["levels"], value_vars=[v for v in ("accuracy", "srcc", "plcc",
                                                                    "srcc_ft", "plcc_ft")
                                                        if v in abl.columns],
                        var_name="measure", value_name="value")
        sections.append(("Number of ranked levels (ablation)",
                         note("accuracy: held-out pair accuracy on all 6 levels; srcc/plcc: "
                              "ranking-only scores vs the target; *_ft: after fine-tuning.")))
        sections.append(("", figures.severity_curves(long, x="levels", y="value",
                                                     series="measure", facet=None, n=None,
                                                     low=None, high=None,
                                                     x_title="levels used in ranking")))
        sections.append(("", figures.sortable_table(abl)))
    sections.append(("Training loss", figures.severity_curves(
        curves, x="step", y="loss", series="model", facet="set", n=None, low=None, high=None,
        y_title="loss (hinge for rankiqa, MSE otherwise)")))
    sections.append(("How this compares with the paper", note(PAPER)))
    cfg = meta["config"]
    info = (f"preset {meta['preset']}, seed {meta['seed']}, git {meta['git_revision'][:10]}, "
            f"{cfg['size']} px references, {cfg['crop']} px crops, {cfg['n_crops']} test crops, "
            f"{cfg['rank_steps']} ranking / {cfg['ft_steps']} fine-tuning steps, "
            f"{meta.get('seconds', np.nan):.0f} s")
    html = page("RankIQA: learning to rank distortion levels", summary(meta, ranking, corr, abl),
                sections, meta=info)
    return write_page(folder / "report.html", html)


def example(folder: str | Path) -> None:
    """A tiny but complete set of this study's tables and ``study.json`` (for page tests)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    types = ["rankiqa-live:gblur", "rankiqa-live:wn"]
    acc = {"untrained": 0.4, "rankiqa": 0.95, "scratch-on-target": 0.7, "rankiqa-ft": 0.9}
    pd.DataFrame([{"set": "live", "model": m, "type": t, "accuracy": a, "pairs": 30}
                  for m, a in acc.items() for t in [*types, "all"]]
                 ).to_parquet(folder / "ranking.parquet")
    pd.DataFrame([{"set": "live", "model": m, "srcc": a - 0.3, "plcc": a - 0.35, "n": 20}
                  for m, a in acc.items()]).to_parquet(folder / "correlations.parquet")
    pd.DataFrame([{"set": "live", "levels": k, "kept": "", "accuracy": 0.7 + 0.04 * k,
                   "srcc": 0.1 * k, "plcc": 0.1 * k, "n": 20} for k in range(2, 7)]
                 ).to_parquet(folder / "ablation.parquet")
    pd.DataFrame([{"set": "live", "model": "rankiqa", "step": s, "loss": 1 / (1 + s)}
                  for s in range(0, 30, 10)]).to_parquet(folder / "training.parquet")
    split = {"train_refs": ["a", "b"], "test_refs": ["c"], "types": types,
             "ground_truth": "example pseudo-labels"}
    config = {"sets": ["live"], "size": 64, "crop": 32, "n_crops": 30, "rank_steps": 30,
              "ft_steps": 30}
    (folder / "study.json").write_text(json.dumps(
        {"study": "rankiqa", "preset": "example", "config": config, "seed": 0,
         "git_revision": "example", "splits": {"live": split}, "seconds": 1.0}))
