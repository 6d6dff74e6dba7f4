"""Report of the quality-vs-accuracy study, built only from the tables in its folder.

``build(folder)`` reads ``study.json`` and the Parquet tables written by
:func:`qbench.causal.analysis.analyze` and writes ``folder/report.html``: a summary paragraph
generated from the numbers, then alignment and AUROC rankings with CIs, the comparison of the
task-aligned metrics with the best conventional metric, metric-vs-accuracy scatter, severity
curves per corruption (accuracy per model; metrics as oriented change in SD units), the causal
graph with gcm arrow strengths on its edges, and the DoWhy effects with refuter p-values.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import networkx as nx
import pandas as pd

from qbench.report import figures as fg
from qbench.report.html import page, write_page

ACC = "accuracy"


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def _ci(row: pd.Series, col: str, fmt: str = ".2f") -> str:
    return f"{row[col]:{fmt}} [{row['low']:{fmt}}, {row['high']:{fmt}}]"


def summary(tables: dict[str, pd.DataFrame], study: dict) -> str:
    """The opening paragraph, every number read from the tables."""
    al = tables["alignment"].query("target == @ACC")
    au = tables["auroc"].query("target == @ACC")
    means = tables["means"].query("outcome == @ACC")
    eff = tables["effects"].query("outcome == @ACC")
    cmp_ = tables["comparisons"]
    n_items = int(al["n_items"].iloc[0]) if len(al) else 0
    n_cond = int(al["n_conditions"].max()) if len(al) else 0
    clean = means.query("corruption == 'clean'")["mean"]
    corrupted = means.query("corruption != 'clean'")["mean"]
    n_models = tables["means"]["outcome"].str.startswith("task:").groupby(
        tables["means"]["outcome"]).any().sum()
    parts = [f"{n_items} test images of {study.get('config', {}).get('dataset', 'scenes')}, "
             f"clean and under {n_cond} corruption x severity conditions, scored by "
             f"{n_models} task model{'s' if n_models != 1 else ''} and "
             f"{al['metric'].nunique()} quality metrics."]
    if len(clean):
        parts.append(f"Mean accuracy fell from {clean.iloc[0]:.3f} (clean) to "
                     f"{corrupted.mean():.3f} averaged over the corrupted conditions.")
    if len(eff):
        worst = eff.sort_values("estimate").iloc[0]
        ref = eff.dropna(subset=["placebo_p"])
        passed = int(((ref["placebo_p"] > 0.05) & (ref["random_cause_p"] > 0.05)
                      & (ref["subset_p"] > 0.05)).sum())
        parts.append(f"The largest causal effect on accuracy (DoWhy, backdoor set empty by "
                     f"design) was {worst['corruption']} at severity {int(worst['severity'])}: "
                     f"{worst['estimate']:+.3f} [{worst['low']:+.3f}, {worst['high']:+.3f}]; "
                     f"{passed} of {len(ref)} refuted accuracy estimates passed all three "
                     f"refuters (p > 0.05).")
    conv_al = al[al["category"] == "conventional"].sort_values("alignment", ascending=False)
    conv_au = au[au["category"] == "conventional"].sort_values("auroc", ascending=False)
    if len(conv_al):
        b = conv_al.iloc[0]
        parts.append(f"Do conventional IQA metrics predict accuracy? Their alignment with the "
                     f"accuracy profile across conditions (Spearman) ranged from "
                     f"{conv_al['alignment'].min():.2f} to {conv_al['alignment'].max():.2f}, "
                     f"best {b['metric']} at {_ci(b, 'alignment')}.")
    if len(conv_au):
        b = conv_au.iloc[0]
        parts.append(f"Per image and within the same source photograph, their AUROC for "
                     f"predicting correctness ranged from {conv_au['auroc'].min():.2f} to "
                     f"{conv_au['auroc'].max():.2f} (0.5 = chance), best {b['metric']} at "
                     f"{_ci(b, 'auroc')}.")
    if len(conv_al):
        pos = int((conv_al["low"] > 0).sum())
        neg = int((conv_al["high"] < 0).sum())
        parts.append(f"So conventional metrics predict accuracy only in part: {pos} of "
                     f"{len(conv_al)} are positively aligned (CI above 0) and {neg} move "
                     f"against accuracy (CI below 0).")
    for _, r in al[al["category"] == "task-aligned"].iterrows():
        a = au[au["metric"] == r["metric"]]
        auroc_txt = f", AUROC {_ci(a.iloc[0], 'auroc')}" if len(a) else ""
        parts.append(f"Task-aligned {r['metric']}: alignment {_ci(r, 'alignment')}{auroc_txt}.")
    attr = tables.get("attribution", pd.DataFrame())
    if len(attr):
        shares = attr.pivot_table(index="outcome", columns="factor", values="share")
        if ACC in shares.index and len(shares) > 1:
            dist = (shares.drop(index=ACC) - shares.loc[ACC]).abs().sum(axis=1).sort_values()
            a = shares.loc[ACC]
            parts.append(
                "gcm arrow strengths attribute accuracy's variation "
                + ", ".join(f"{a[f]:.0%} to {f}" for f in a.index)
                + "; the metrics whose factor profile is closest to accuracy's are "
                + ", ".join(f"{m} (L1 {d:.2f})" for m, d in dist.iloc[:3].items())
                + f", the farthest {dist.index[-1]} (L1 {dist.iloc[-1]:.2f}).")
    for _, c in cmp_.iterrows():
        verdict = ("better than" if c["low"] > 0 else "worse than" if c["high"] < 0
                   else "not distinguishable from")
        pool = "no-reference " if c.get("pool") == "NR" else ""
        parts.append(f"{c['metric']} minus the best conventional {pool}metric ({c['versus']}) "
                     f"on {c['measure']}: {c['difference']:+.2f} [{c['low']:+.2f}, "
                     f"{c['high']:+.2f}] (paired cluster bootstrap): {verdict} it.")
    return " ".join(parts)


def _graph_figure(attr: pd.DataFrame, metrics: list[str]):
    """Factor -> outcome graph (image marginalised) with gcm arrow-strength shares."""
    g = nx.DiGraph()
    for outcome in [ACC, *metrics]:
        for _, r in attr[attr["outcome"] == outcome].iterrows():
            g.add_edge(r["factor"], outcome, effect=float(r["share"]))
    return fg.causal_graph(g, low=None, high=None, fmt=".2f",
                           title="gcm arrow strength (share of each outcome's total) from "
                                 "content, corruption type and severity")


def _provenance_note(folder: Path) -> str:
    """What each task-aligned metric was trained on: none of them saw an evaluated model."""
    path = folder / "metrics.json"
    if not path.exists():
        return ""
    meta = json.loads(path.read_text())
    items = [f"{m}: {v.get('description', '')} (trained on: "
             f"{', '.join(v.get('trained_on') or []) or 'nothing'})"
             for m, v in meta.items() if v.get("category") == "task-aligned"]
    if not items:
        return ""
    return ("<p>" + html.escape(
        "The task-aligned metrics rest on a proxy classifier that is none of the evaluated "
        "task models, and TG-IQA never saw test images, so every task model is a fair "
        "target for them. ") + "<br>".join(html.escape(i) for i in items) + "</p>")


def build(folder: str | Path) -> Path:
    """Write ``folder/report.html`` from the study's tables; returns its path."""
    folder = Path(folder)
    study = json.loads((folder / "study.json").read_text())
    names = ("alignment", "auroc", "means", "profiles", "effects", "comparisons",
             "attribution")
    tables = {n: _read(folder, n) for n in names}
    al = tables["alignment"].query("target == @ACC").copy()
    au = tables["auroc"].query("target == @ACC").copy()
    sections: list[tuple[str, object]] = []
    sections.append(("Alignment with accuracy (Spearman across conditions, 95% CI)",
                     fg.ranking_bars(al, label="metric", value="alignment", low="low",
                                     high="high", group="category",
                                     value_title="Spearman rho, response vs accuracy profile")))
    sections.append(("Within-content AUROC for per-image correctness (95% CI)",
                     fg.ranking_bars(au, label="metric", value="auroc", low="low", high="high",
                                     n="n", group="category",
                                     value_title="AUROC within source photograph")))
    per_model = tables["alignment"].query("target != @ACC")
    if len(per_model):
        order = list(al.sort_values("alignment", ascending=False)["metric"])
        sections.append(("Alignment per task model",
                         fg.heatmap(per_model, row="metric", col="target", value="alignment",
                                    low="low", high="high", zmin=-1, zmax=1, zmid=0,
                                    row_order=order)))
    if len(tables["comparisons"]):
        sections.append(("Task-aligned metrics minus the best conventional metric",
                         fg.sortable_table(tables["comparisons"])))
    prof = tables["profiles"]
    acc = prof[(prof["outcome"] == ACC)][["corruption", "severity", "change", "low", "high"]]
    met = prof[prof["kind"] == "metric"].merge(acc, on=["corruption", "severity"],
                                                suffixes=("", "_acc"))
    sections.append(("Metric response vs accuracy change per condition",
                     fg.scatter_ci(met, x="z", y="change_acc", x_low="z_low", x_high="z_high",
                                   y_low="low_acc", y_high="high_acc", group="outcome",
                                   label="corruption",
                                   x_title="metric response, centred across conditions (oriented, SD)",
                                   y_title="accuracy change vs clean")))
    means = tables["means"]
    acc_curves = means[(means["outcome"] == ACC)
                       | means["outcome"].str.startswith("task:")].copy()
    acc_curves = acc_curves[acc_curves["corruption"] != "clean"]
    sections.append(("Accuracy against severity, per corruption",
                     fg.severity_curves(acc_curves, y="mean", series="outcome",
                                        facet="corruption", mode="dropdown",
                                        y_title="accuracy")))
    sections.append(("Metric response against severity, per corruption (oriented, centred, SD)",
                     fg.severity_curves(met, y="z", low="z_low", high="z_high",
                                        series="outcome", facet="corruption", mode="dropdown",
                                        y_title="centred response (SD)")))
    if len(tables["attribution"]):
        top = al.sort_values("alignment", ascending=False)
        show = list(dict.fromkeys([*top[top["category"] == "task-aligned"]["metric"],
                                   *top[top["category"] == "conventional"]["metric"][:2]]))
        sections.append(("Causal graph: content, corruption, severity -> outcomes",
                         _graph_figure(tables["attribution"], show)))
        sections.append(("gcm arrow strengths (all outcomes)",
                         fg.sortable_table(tables["attribution"])))
    eff = tables["effects"]
    if len(eff):
        cols = ["outcome", "corruption", "severity", "n", "estimate", "low", "high",
                "std_effect", "placebo_effect", "placebo_p", "random_cause_p", "subset_p"]
        sections.append(("DoWhy effects on accuracy with refuters",
                         fg.sortable_table(eff[eff["kind"] == "accuracy"][cols])))
        refuted = eff[(eff["kind"] == "metric") & eff["placebo_p"].notna()]
        if len(refuted):
            sections.append(("DoWhy effects on metrics (refuted subset)",
                             fg.sortable_table(refuted[cols])))
    sections.append(("How these numbers are computed", _provenance_note(folder) + "<p>" + html.escape(
        "Alignment: Spearman rho across corrupted conditions between the metric's mean "
        "oriented change vs clean (direction from higher_is_better) and the mean accuracy "
        "change. AUROC: within each source photograph (content group), Mann-Whitney pairs of "
        "correctly vs wrongly classified corrupted images, pooled over groups (= per-group "
        "AUROC weighted by its number of pairs), averaged over the task models. CIs: 95% "
        "percentile cluster bootstrap over source photographs, the same draws for every "
        "metric. Effects: DoWhy backdoor.linear_regression of 'condition vs clean' on matched "
        "items; refuters placebo (permuted), random common cause, 80% subset with the stated "
        "simulations; p > 0.05 passes.") + "</p>"))
    meta = (f"study {study.get('study')} · preset {study.get('preset')} · seed "
            f"{study.get('seed')} · git {study.get('git_revision', '')[:12]}")
    out = folder / "report.html"
    write_page(out, page("Do quality metrics predict DNN accuracy?", summary(tables, study),
                         sections, meta=meta))
    return out
