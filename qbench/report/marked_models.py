"""Report of the marked-models study, built from its tables only (no recomputation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from qbench.report import figures
from qbench.report.html import note, page, write_page

CHECKS = {  # column in audit_summary -> heat-map label
    "e_target_diff": "(a) Δ energy in target",
    "agree_gradcam_marked": "(b) ρ with Grad-CAM",
    "deletion_auc_diff": "(c) Δ deletion AUC",
    "insertion_auc_diff": "(c) Δ insertion AUC",
    "sanity_spearman_marked": "(d) ρ after randomisation",
    "detector_auroc": "(e) detector AUROC",
}


def _fmt(v: float, nd: int = 2) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{nd}f}"


def _methods_by(summary: pd.DataFrame, verdict: str) -> list[str]:
    """Methods whose verdict is ``verdict`` for every target of every task."""
    out = []
    for m, g in summary.groupby("method"):
        if (g["verdict"] == verdict).all():
            out.append(m)
    return sorted(out)


FAMILY_NAMES = {"ft": "whole network fine-tuned with the CAM loss",
                "mark": "zero-mean mark branch on a frozen base",
                "scratch": "trained from scratch"}


def summary_text(success: pd.DataFrame, summary: pd.DataFrame, regions_note: str) -> str:
    parts = []
    main = success[success.audited] if "audited" in success else \
        success[success.cam_weight == 1.0]
    for (task, fam), g in main.groupby(["task", "family"]):
        met = g[g.floor_met]
        parts.append(
            f"{task} ({FAMILY_NAMES.get(fam, fam)}): {len(met)} of {len(g)} audited marked "
            f"models meet the floor "
            f"(Grad-CAM energy in target ≥ 0.7 and {g.quality_metric.iloc[0]} within tolerance "
            f"of the twin); energy in target "
            + ", ".join(f"{r.target} (λ={r.cam_weight:g}) {r.energy_in_target:.2f} "
                        f"(chance {r.chance_energy:.2f}, "
                        f"{r.quality_metric} {r.quality:.3f} vs twin {r.twin_quality:.3f})"
                        for r in g.itertuples()) + ".")
    for task in sorted(success.task.unique()):
        fl = success[(success.task == task) & success.floor_met]
        missing = sorted(set(success[success.task == task].target) - set(fl.target))
        if missing:
            parts.append(f"{task}: no model meets the floor for target(s) {', '.join(missing)}.")
    if len(summary):
        counts = summary.groupby("verdict")["method"].nunique().to_dict()
        parts.append("Audit verdicts over (method, task, family, target) cells: " + ", ".join(
            f"{k}: {int((summary.verdict == k).sum())} cells ({v} methods)"
            for k, v in sorted(counts.items())) + ".")
        for verdict in ("betrays", "fooled", "reveals evidence", "hides"):
            ms = _methods_by(summary, verdict)
            if ms:
                parts.append(f"Always '{verdict}': {', '.join(ms)}.")
        best = summary.sort_values("detector_auroc", ascending=False).head(3)
        parts.append("Best detectors of marked models from map statistics alone: " + "; ".join(
            f"{r.method} on {r.task}/{getattr(r, 'family', 'ft')}/{r.target} AUROC "
            f"{_fmt(r.detector_auroc)} "
            f"[{_fmt(r.detector_lo)}, {_fmt(r.detector_hi)}]" for r in best.itertuples()) + ".")
    parts.append(regions_note)
    return " ".join(parts)


def _regions_note(regions: pd.DataFrame) -> str:
    out = []
    for (task, fam, target), g in regions.groupby(["task", "family", "target"]):
        if task != "iqa" and g.drop_evidence.isna().all():  # a classifier without object masks
            m, t = g[g.role == "marked"], g[g.role == "twin"]
            out.append(f"{task}/{fam}/{target}: blurring the planted region drops the marked "
                       f"model's class probability by {m.drop_target.mean():.3f} (twin "
                       f"{t.drop_target.mean():.3f}; no object masks)")
        elif task != "iqa":
            m, t = g[g.role == "marked"], g[g.role == "twin"]
            out.append(f"{task}/{fam}/{target}: blurring the planted region drops the marked "
                       f"model's class probability by {m.drop_target.mean():.3f} vs "
                       f"{m.drop_evidence.mean():.3f} for the object "
                       f"(twin {t.drop_target.mean():.3f} vs {t.drop_evidence.mean():.3f})")
        else:
            m, t = g[g.role == "marked"], g[g.role == "twin"]
            out.append(f"iqa/{fam}/{target}: restoring the planted region recovers "
                       f"{m.recovered_target.mean():.2f} of the quality gap for the marked model "
                       f"(area {m.area_target.mean():.2f}; twin "
                       f"{t.recovered_target.mean():.2f})")
    return ("Does the model really use the marked region? " + "; ".join(out) + " (scenes: "
            "regions are replaced by a Gaussian blur of σ = 5 px at 224 px, 1.4 px at 64 px, "
            "which leaves a shape's silhouette visible, so small drops there mean the check "
            "removes little evidence, not that the model ignores the region).") if out else ""


def _heat(summary: pd.DataFrame, task: str, fam: str):
    rows = []
    s = summary[(summary.task == task) & (summary.family == fam)]
    for col, label in CHECKS.items():
        if col not in s:
            continue
        g = s.groupby("method")[col].mean()
        for method, v in g.items():
            rows.append({"method": method, "check": label, "value": float(v),
                         "n": int((s.method == method).sum())})
    df = pd.DataFrame(rows)
    return figures.heatmap(df, row="method", col="check", value="value", n="n", zmid=0,
                           colorscale="RdBu", col_order=[c for c in CHECKS.values()
                                                         if c in set(df.check)],
                           title=f"{task}, {fam}: audit, mean over targets (n = targets)")


def _gallery(gal: dict, task: str, fam: str, target: str, methods: list[str], k: int):
    rows = []
    imgs = gal.get(f"image|{task}")
    tmask = gal.get(f"target|{task}|{target}")
    if imgs is None:
        return None
    k = min(k, len(imgs))
    for i in range(k):
        for role in ("marked", "twin"):
            rows.append({"image": imgs[i], "map": tmask[i].astype(np.float32), "row": "target",
                         "col": f"image {i} · {role}", "method": "target"})
    for method in methods:
        for i in range(k):
            for role in ("marked", "twin"):
                m = gal.get(f"map|{task}|{fam}|{target}|{method}|{role}|{i}")
                if m is None:
                    continue
                m = m.astype(np.float32)
                lo, hi = np.nanmin(m), np.nanmax(m)
                m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
                rows.append({"image": imgs[i], "map": m, "row": method,
                             "col": f"image {i} · {role}", "method": method})
    return figures.image_gallery(pd.DataFrame(rows), hover=("method",), cell_px=120,
                                 title=f"{task} ({fam}), target {target}: marked vs twin "
                                       "(min-max maps)")


def _tradeoff(t: pd.DataFrame, task: str):
    """Quality against Grad-CAM energy in the corners over the swept weights (twin = λ 0)."""
    t = t.assign(label=[f"λ={w:g}" for w in t.cam_weight])
    metric = "SRCC with SSIM pseudo-labels" if task == "iqa" else "test accuracy"
    tol = 0.02 if task == "iqa" else 0.01
    fig = figures.tradeoff_curve(t, x="energy_in_target", y="quality", label="label",
                                 higher_x_better=True, higher_y_better=True,
                                 x_title="Grad-CAM energy in target (corners)", y_title=metric,
                                 title=f"{task}, corners, whole network fine-tuned: "
                                       "CAM-loss weight trade-off")
    twin = float(t.twin_quality.iloc[0])
    if np.isfinite(twin):
        fig.add_hline(y=twin, line_dash="dot", annotation_text="unmarked twin")
        fig.add_hline(y=twin - tol, line_dash="dash", line_color="#c33",
                      annotation_text=f"floor (twin − {tol:g})")
    fig.add_vline(x=0.7, line_dash="dash", line_color="#c33")
    return fig


def build(folder: str | Path) -> Path:
    """Write ``folder/report.html`` from the study's tables."""
    folder = Path(folder)
    meta = json.loads((folder / "study.json").read_text()) if (folder / "study.json").exists() \
        else {}
    success = pd.read_parquet(folder / "success.parquet")
    tradeoff = pd.read_parquet(folder / "tradeoff.parquet")
    summary = pd.read_parquet(folder / "audit_summary.parquet")
    regions = pd.read_parquet(folder / "audit_regions.parquet")
    failures = pd.read_parquet(folder / "failures.parquet")
    gal = dict(np.load(folder / "gallery.npz")) if (folder / "gallery.npz").exists() else {}

    sections: list = []
    sections.append(("Marking success", note(
        "Grad-CAM (predicted class / score, eval mode) on held-out test images: share of its "
        "positive energy inside the target, and IoU of its top-k pixels (k = target area) with "
        "the target. Floor: energy ≥ 0.7 and IQA SRCC within 0.02 / accuracy within 1 point of "
        "the unmarked twin. IQA quality is agreement with SSIM pseudo-labels (full-reference), "
        "not human opinion; a classifier marked with labels 'clean-prediction' is measured by "
        "top-1 agreement with its base's clean prediction (quality_metric 'agreement'), not "
        "accuracy. The ground_truth column says which. quality_drop_lo/hi: paired bootstrap "
        "95% CI of twin − marked over test images.") + figures.sortable_table(
            success, columns=[c for c in [
            "model", "task", "family", "target", "ground_truth", "cam_weight", "audited",
            "energy_in_target",
            "chance_energy",
            "topk_iou", "quality_metric", "quality", "twin_quality", "quality_drop",
            "quality_drop_lo", "quality_drop_hi",
            "floor_met", "order_sha_matches_twin"] if c in success])))
    for task, tr in tradeoff.groupby("task") if len(tradeoff) else []:
        sections.append((f"Trade-off over the CAM-loss weight: {task}", _tradeoff(tr, task)))
    cells = sorted(set(zip(summary.task, summary.family, strict=True))) if len(summary) else []
    for task, fam in cells:
        sections.append((f"Audit heat map: {task}, {FAMILY_NAMES.get(fam, fam)}",
                         _heat(summary, task, fam)))
    if len(summary):
        sections.append(("Verdicts per method and target", note(
            "betrays: the marked model's maps sit on the planted target more than the twin's "
            "(95% CI of the paired difference above 0.05); fooled: betrays, but the planted "
            "region is not the model's evidence (its output depends less on it than on the "
            "true evidence, or no more than the twin's does: CI of the paired gain below "
            "0.05); reveals "
            "evidence: does not show the mark and keeps the twin's energy on the object "
            "(scenes); hides: neither. Detector: logistic regression on target-agnostic map "
            "statistics, held-out images, AUROC per image map with bootstrap CI.")
            + figures.sortable_table(summary, columns=[c for c in [
                "task", "family", "target", "method", "verdict", "n_images", "e_target_marked",
                "e_target_twin", "e_target_diff", "e_target_diff_lo", "e_target_diff_hi",
                "e_object_diff", "agree_gradcam_marked", "agree_gradcam_twin",
                "deletion_auc_marked", "deletion_auc_twin", "insertion_auc_marked",
                "insertion_auc_twin", "sanity_spearman_marked", "detector_auroc",
                "detector_lo", "detector_hi", "uses_target", "uses_target_lo",
                "uses_target_hi", "uses_target_twin", "uses_target_gain",
                "uses_target_gain_lo", "uses_target_gain_hi"] if c in summary])))
    methods = sorted(summary.method.unique()) if len(summary) else []
    for task, fam in cells:
        mine = summary[(summary.task == task) & (summary.family == fam)]
        for target in sorted(mine.target.unique()):
            fig = _gallery(gal, task, fam, target, methods, 2)
            if fig is not None:
                sections.append((f"Gallery: {task} / {fam} / {target}", fig))
    if len(failures):
        sections.append(("Failures (recorded and skipped)", figures.sortable_table(failures)))
    text = summary_text(success, summary, _regions_note(regions))
    meta_line = (f"preset {meta.get('preset', '?')} · seeds {meta.get('seed', '?')} · git "
                 f"{str(meta.get('git_revision', ''))[:10]}")
    out = folder / "report.html"
    write_page(out, page("Marked models: do explanations betray them?", text, sections,
                         meta_line))
    return out
