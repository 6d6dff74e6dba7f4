"""Report of the explainers study, built only from the tables the study wrote.

``build(folder)`` reads study.json, summary.parquet, comparisons.parquet, sanity.parquet,
per_image.parquet, failures.json and gallery.npz and writes folder/report.html: a summary
paragraph generated from the numbers, the claims with paired bootstrap intervals, the metric
table, bars per key metric, sanity-check curves and a gallery with hover.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from qbench.explain.evaluate import DIRECTIONS
from qbench.report import figures
from qbench.report.html import page, write_page

KEY_METRICS = ("deletion_auc_zero", "insertion_auc_blur", "energy_pointing_game",
               "pointing_game", "kl_nontarget", "cds", "fine_detail", "gini")


TABLES = (
    ("Faithfulness and class distortion (mean over images, 95% bootstrap CI)",
     lambda m: m.startswith(("deletion", "insertion")) or m in ("cds", "kl_target",
                                                                 "kl_nontarget")),
    ("Localisation, complexity, resolution and cost (mean over images, 95% bootstrap CI)",
     lambda m: not (m.startswith(("deletion", "insertion")) or m in ("cds", "kl_target",
                                                                      "kl_nontarget"))),
)


def _metric_table(summary: pd.DataFrame, chosen) -> str:
    """One row per (model, method), one column per metric (value [low, high]); the header
    says which way is better."""
    metrics = [m for m in dict.fromkeys(summary["metric"]) if chosen(m)]
    wide = summary[["model", "method"]].drop_duplicates().reset_index(drop=True)
    ci, labels = {}, {}
    for m in metrics:
        part = summary[summary["metric"] == m].set_index(["model", "method"])
        key = pd.MultiIndex.from_frame(wide[["model", "method"]])
        for col, src in ((m, "value"), (f"{m}__low", "low"), (f"{m}__high", "high")):
            wide[col] = part[src].reindex(key).to_numpy()
        ci[m] = (f"{m}__low", f"{m}__high")
        labels[m] = f"{m} ({'↑' if direction(m) else '↓'})"
    n = summary.groupby(["model", "method"])["n"].max()
    wide["n"] = n.reindex(pd.MultiIndex.from_frame(wide[["model", "method"]])).to_numpy()
    return figures.sortable_table(wide, columns=["model", "method", *metrics, "n"], ci=ci,
                                  labels=labels)


def direction(metric: str) -> bool:
    """Higher is better? (deletion/insertion AUCs carry their substitute as a suffix)."""
    for prefix in ("deletion_auc", "insertion_auc"):
        if metric.startswith(prefix):
            return DIRECTIONS[prefix]
    return DIRECTIONS.get(metric, True)


def _claim_sentence(comps: pd.DataFrame, a: str, b: str, metric: str) -> str | None:
    c = comps[(comps["a"] == a) & (comps["b"] == b) & (comps["metric"] == metric)]
    if c.empty:
        return None
    parts = [f"{r.model}: {r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}] ({r.verdict})"
             for r in c.itertuples()]
    return f"{a} − {b} on {metric}: " + "; ".join(parts)


def summary_text(meta: dict, summary: pd.DataFrame, comps: pd.DataFrame,
                 failures: list) -> str:
    cfg = meta["config"]
    out = [f"{len(cfg['methods'])} explanation methods on {len(cfg['models'])} scenes "
           f"classifier(s) ({', '.join(cfg['models'])}), {cfg['images']} test images each, "
           f"target = the predicted class; preset '{meta['preset']}'"
           + (" (reduced iteration budgets, not the papers')" if meta["preset"] == "quick"
              else "") + "."]
    for metric in ("deletion_auc_zero", "energy_pointing_game"):
        s = summary[summary["metric"] == metric].dropna(subset=["value"])
        if not s.empty:
            best = s.sort_values("value", ascending=not direction(metric)).iloc[0]
            out.append(f"Best mean {metric}: {best['method']} on {best['model']} "
                       f"({best['value']:.3f} [{best['low']:.3f}, {best['high']:.3f}]).")
    if not comps.empty:
        cam = comps[comps["a"] == "cameras"]
        if not cam.empty:
            res = cam[cam["metric"] == "fine_detail"]
            faith = cam[cam["metric"] != "fine_detail"]
            hi_res = int((res["verdict"] == "better").sum())
            not_worse = int((faith["verdict"] != "worse").sum())
            out.append(f"Claim 1 (CAMERAS vs Grad-CAM): finer detail in {hi_res}/{len(res)} "
                       f"model(s); at least as faithful in {not_worse}/{len(faith)} "
                       f"(model, deletion/insertion substitute) comparisons "
                       f"({'reproduced' if hi_res == len(res) and not_worse == len(faith) else 'not fully reproduced'}).")
        rp = comps[comps["a"] == "robust_perturbation"]
        if not rp.empty:
            def count(metric_rows: pd.DataFrame) -> str:
                return (f"{int((metric_rows['verdict'] == 'better').sum())}/{len(metric_rows)}"
                        f" (worse in {int((metric_rows['verdict'] == 'worse').sum())})")

            out.append("Claim 2 (Robust Perturbation vs MP, EP, RISE): lower deletion AUC in "
                       f"{count(rp[rp['metric'].str.startswith('deletion')])} comparisons; "
                       f"higher CDS in {count(rp[rp['metric'] == 'cds'])}; lower non-target "
                       f"KL (class distortion proper) in "
                       f"{count(rp[rp['metric'] == 'kl_nontarget'])}.")
    out.append(f"{len(failures)} method run(s) failed and are listed below." if failures
               else "No method failed.")
    return " ".join(out)


SIMILARITIES = ["spearman", "spearman_abs", "ssim", "hog"]


def sanity_table(sanity: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, reading): cascading at full depth; independent averaged over
    the single randomised layers, and at the layer whose randomisation changed the map least."""
    means = sanity.groupby(["model", "method", "mode", "depth", "layer"], as_index=False)[
        SIMILARITIES].mean()
    parts = []
    casc = means[means["mode"] == "cascading"]
    if not casc.empty:
        casc = casc.loc[casc.groupby(["model", "method"])["depth"].idxmax()]
        parts.append(casc.assign(reading="cascading, all layers"))
    ind = means[means["mode"] == "independent"]
    if not ind.empty:
        mean = ind.groupby(["model", "method"], as_index=False)[SIMILARITIES].mean()
        parts.append(mean.assign(reading="independent, mean over layers", layer=""))
        worst = ind.loc[ind.groupby(["model", "method"])["spearman_abs"].idxmax()]
        parts.append(worst.assign(reading="independent, most similar layer"))
    out = pd.concat(parts, ignore_index=True)
    return out[["model", "method", "reading", "layer", *SIMILARITIES]].sort_values(
        ["model", "method", "reading"], ignore_index=True)


def _sanity_figure(sanity: pd.DataFrame, metric: str = "spearman_abs") -> go.Figure:
    fig = go.Figure()
    d = sanity[sanity["mode"] == "cascading"]
    for k, ((model, method), g) in enumerate(d.groupby(["model", "method"], sort=True)):
        m = g.groupby(["depth", "layer"], as_index=False)[metric].mean().sort_values("depth")
        fig.add_trace(go.Scatter(x=m["depth"], y=m[metric], mode="lines+markers",
                                 name=f"{method} · {model}", line={"color": figures.colour(k)},
                                 text=m["layer"],
                                 hovertemplate=f"{method} · {model}<br>randomised down to "
                                               "%{text}<br>" + metric + ": %{y:.3f}"
                                               "<extra></extra>"))
    fig.update_layout(xaxis_title="layers randomised (cascading, from the output)",
                      yaxis_title=f"mean {metric} with the original map", height=480)
    return fig


def _gallery(folder: Path, per_image: pd.DataFrame) -> go.Figure | None:
    path = folder / "gallery.npz"
    if not path.exists():
        return None
    g = np.load(path)
    model = str(g["model"])
    rows = []
    for i, item in enumerate(g["item_ids"]):
        rlabel = f"{item}<br>{g['labels'][i]}→{g['predicted'][i]}"
        img = g["images"][i].astype(np.float32)
        rows.append({"col": rlabel, "row": "object mask", "image": img,
                     "map": g["masks"][i].astype(np.float32), "method": "mask",
                     "pointing_game": np.nan, "deletion_auc_zero": np.nan})
        for j, method in enumerate(g["methods"]):
            sel = per_image[(per_image["model"] == model) & (per_image["method"] == method)
                            & (per_image["image"] == i)].set_index("metric")["value"]
            m = g["maps"][j, i]
            lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
            rows.append({"col": rlabel, "row": str(method), "image": img,
                         "map": (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m),
                         "method": str(method),
                         "pointing_game": float(sel.get("pointing_game", np.nan)),
                         "deletion_auc_zero": float(sel.get("deletion_auc_zero", np.nan))})
    return figures.image_gallery(pd.DataFrame(rows), hover=("method", "pointing_game",
                                                           "deletion_auc_zero"),
                                 title=f"{model}: maps min-max normalised per image",
                                 cell_px=130)


def build(folder: str | Path) -> Path:
    """Write ``folder/report.html`` from the study's tables; returns its path."""
    folder = Path(folder)
    meta = json.loads((folder / "study.json").read_text())
    summary = pd.read_parquet(folder / "summary.parquet")
    comps = pd.read_parquet(folder / "comparisons.parquet")
    sanity = pd.read_parquet(folder / "sanity.parquet")
    per_image = pd.read_parquet(folder / "per_image.parquet")
    failures = json.loads((folder / "failures.json").read_text())

    sections: list[tuple[str, go.Figure | str]] = []
    if not comps.empty:
        sections.append(("Claims: paired differences a − b over the same images", (
            "<p>Mean paired difference with a 95% bootstrap interval over images; the verdict "
            "is for <i>a</i>: better / worse when the interval excludes 0 in the metric's "
            "direction. CDS = log(KL_t/KL_nt + 1) is higher-is-better; KL_nt (class distortion "
            "proper) is lower-is-better.</p>" + figures.sortable_table(
                comps, columns=["model", "a", "b", "metric", "diff", "mean_a", "mean_b", "n",
                                "verdict"], ci={"diff": ("low", "high")}))))
    for title, chosen in TABLES:
        sections.append((title, _metric_table(summary, chosen)))
    for metric in KEY_METRICS:
        s = summary[summary["metric"] == metric].copy()
        if s.empty:
            continue
        s["label"] = s["method"] + " · " + s["model"]
        sections.append((metric, figures.ranking_bars(
            s, label="label", value="value", low="low", high="high", n="n",
            higher_is_better=direction(metric), group="model", value_title=metric)))
    if not sanity.empty:
        n_sanity = sanity["image"].nunique()
        sections.append((f"Sanity checks (Adebayo et al. 2018): rank correlation of |map| with "
                         f"the original after cascading randomisation ({n_sanity} images)",
                         _sanity_figure(sanity)))
        sections.append(("Similarity with the original map (lower = passes): cascading with "
                         "every layer randomised; independent as the mean and the worst (most "
                         "similar) single layer", figures.sortable_table(sanity_table(sanity))))
    gal = _gallery(folder, per_image)
    if gal is not None:
        sections.append(("Gallery", gal))
    if failures:
        sections.append(("Failures", figures.sortable_table(pd.DataFrame(failures))))
    text = summary_text(meta, summary, comps, failures)
    html = page("Explainers study", text, sections,
                meta=f"preset {meta['preset']} · seed {meta['seed']} · git "
                     f"{meta['git_revision'][:10]} · {meta['seconds']:.0f} s")
    return write_page(folder / "report.html", html)
