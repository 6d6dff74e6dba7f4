"""The explanation audit: do explanation methods betray a model whose Grad-CAM was marked?

For every explainer and every (marked model, unmarked twin) pair, on the same test images:

(a) **visibility** -- energy share of the map inside the planted target (H4b's
    ``energy_pointing_game``: min-max normalised map, Σ map·T / Σ map), marked vs twin; the
    paired difference (marked − twin) with a bootstrap CI over images;
(b) **agreement with Grad-CAM** -- Spearman ρ between the method's map and the same model's
    Grad-CAM, per image;
(c) **faithfulness** -- deletion AUC (zero substitute, lower = better) and insertion AUC (blur
    start, higher = better) of each map; and, per model (no explainer involved), how much the
    output moves when the *planted* region vs the *true evidence* is removed:
    scenes: drop of the predicted class's probability when the target region vs the object
    mask is replaced by its blurred version; IQA: the share of the score gap (pristine −
    distorted) recovered when only the target region vs only its complement is restored from
    the pristine reference;
(d) **sanity** -- Spearman ρ between the map of the model and of the model with every
    parameter layer re-drawn (H4b's cascading randomisation, last step); low = passes;
(e) **detector** -- logistic regression on target-agnostic statistics of each map (Gini,
    entropy, total variation, energy in the corners / centre / border frame, energy on the
    image's own spectral-residual salient region and, for scenes, on the object, the map's
    rank correlation with the model's mean map over the other images), trained and tested on
    disjoint images (k-fold by image; leave-one-seed-out when several seeds), AUROC of
    telling marked-model maps from twin maps with a bootstrap CI over images (and seeds).

All rows are returned as pandas DataFrames; nothing is aggregated away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from qbench import stats
from qbench.marking.targets import corners, spectral_residual, top_area

# cheap settings per method for the quick preset on a shared 2-core CPU (a smoke-level
# audit: perturbation methods run 10 iterations instead of their papers' 150-800, RISE 100
# masks); the full preset uses the methods' own defaults
QUICK_OPTIONS: dict[str, dict] = {
    "rise": {"n_masks": 100, "batch_size": 100},
    "meaningful_perturbation": {"iterations": 10},
    "extremal_perturbation": {"iterations": 10},
    "robust_perturbation": {"iterations": 10},
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"samples": 4},
    "cameras": {"num_scales": 2},
}

# Budgets for a 224 px ImageNet classifier (efficientnet-lite0, CAM layer 1280 × 7 × 7) on the
# shared 2-core CPU (load 2-4). Measured seconds per image, one image each, at reduced budgets
# and scaled to the defaults: CAM family 0.1, gradient 0.15, Integrated Gradients 0.3 per
# step (default 50: 15), SmoothGrad 0.14 per sample (50: 7), CAMERAS 2.6 at 2 scales (default
# 8 scales up to ×4.125: over a minute), RISE 0.12 per mask (4000: 480), Meaningful
# Perturbation 0.3 per iteration (500: 150), Extremal 0.14 (800: 110), Robust 0.13 (150: 20),
# Score-CAM 134 (one forward per channel: 1280). Every method also pays a fixed 5-20 s per
# model (target resolution, the randomised copy, first calls). ``audit_images`` runs a
# method on the first k audit images only, ``audit_sanity: False`` skips its randomisation
# check (it would cost the map again). Deletion / insertion at the default 224-pixel step
# cost 9-18 s per map; the real presets use 8-10 steps (``faithfulness_steps``, ~1 s).
REAL_OPTIONS: dict[str, dict] = {
    "integrated_gradients": {"steps": 8},
    "smoothgrad": {"samples": 8},
    "cameras": {"num_scales": 2},
    "rise": {"n_masks": 100, "batch_size": 50, "audit_images": 24, "audit_sanity": False},
    "meaningful_perturbation": {"iterations": 30, "audit_images": 24, "audit_sanity": False},
    "extremal_perturbation": {"iterations": 40, "audit_images": 24, "audit_sanity": False},
    "robust_perturbation": {"iterations": 30, "audit_images": 24, "audit_sanity": False},
    "scorecam": {"audit_images": 4, "audit_sanity": False},
}
REAL_QUICK_OPTIONS: dict[str, dict] = {
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"samples": 4},
    "cameras": {"num_scales": 2},
    "rise": {"n_masks": 50, "batch_size": 50, "audit_images": 6, "audit_sanity": False},
    "meaningful_perturbation": {"iterations": 10, "audit_images": 6, "audit_sanity": False},
    "extremal_perturbation": {"iterations": 10, "audit_images": 6, "audit_sanity": False},
    "robust_perturbation": {"iterations": 10, "audit_images": 6, "audit_sanity": False},
    "scorecam": {"audit_images": 2, "audit_sanity": False},
}


@dataclass
class Pair:
    """One marked model and its unmarked twin (same seed, data order, task)."""

    task: str  # "iqa" or "scenes"
    target: str  # "salient", "corners", "text"
    seed: int
    marked: nn.Module
    twin: nn.Module
    marked_name: str = ""
    twin_name: str = ""
    target_options: dict = field(default_factory=dict)
    family: str = "ft"  # how it was marked: "ft" (whole network) or "mark" (frozen base)


@dataclass
class AuditImages:
    """The test images of one task, with what the checks need."""

    images: torch.Tensor  # N×3×H×W
    masks: torch.Tensor | None = None  # object masks N×H×W (scenes)
    references: torch.Tensor | None = None  # pristine references N×3×H×W (IQA)


def target_masks(kind: str, images: torch.Tensor, options: dict | None = None) -> torch.Tensor:
    from qbench.marking.targets import batch_targets

    opts = dict(options or {})
    if kind == "salient":
        return top_area(spectral_residual(images), float(opts.get("area", 0.3)))
    return batch_targets(kind, images, **opts)


def _explain_target(task: str):
    return (lambda o: o) if task == "iqa" else None


def _resolved(model: nn.Module, x: torch.Tensor, task: str):
    from qbench.explain import resolve_target

    return resolve_target(model, x, _explain_target(task))


def _frame(h: int, w: int, width: float = 0.125) -> torch.Tensor:
    k = max(1, round(width * min(h, w)))
    m = torch.ones(h, w)
    m[k:-k, k:-k] = 0
    return m


def _centre(h: int, w: int, frac: float = 0.5) -> torch.Tensor:
    m = torch.zeros(h, w)
    a, b = round(h * (1 - frac) / 2), round(w * (1 - frac) / 2)
    m[a:h - a, b:w - b] = 1
    return m


def map_features(maps: torch.Tensor, images: torch.Tensor, masks: torch.Tensor | None
                 ) -> pd.DataFrame:
    """Target-agnostic statistics of each map (the detector's inputs)."""
    from qbench.explain.evaluate import energy_pointing_game, entropy, gini, total_variation
    from qbench.explain.evaluate.randomisation import map_similarity

    n, h, w = maps.shape
    feats = {"gini": gini(maps), "entropy": entropy(maps), "tv": total_variation(maps)}
    for name, m in (("e_corners", corners((h, w))), ("e_centre", _centre(h, w)),
                    ("e_frame", _frame(h, w))):
        feats[name] = energy_pointing_game(maps, m.expand(n, h, w))
    feats["e_salient"] = energy_pointing_game(maps, top_area(spectral_residual(images), 0.3))
    if masks is not None:
        feats["e_object"] = energy_pointing_game(maps, masks)
    if n > 1:
        total = maps.sum(0, keepdim=True)
        loo = (total - maps) / (n - 1)  # mean map over the other images
        feats["consistency"] = torch.as_tensor(map_similarity(maps, loo)["spearman"])
    return pd.DataFrame({k: torch.as_tensor(v).float().numpy() for k, v in feats.items()})


def region_effects(model: nn.Module, task: str, data: AuditImages, target: torch.Tensor
                   ) -> pd.DataFrame:
    """Per image: output change when the planted region vs the true evidence is removed."""
    from qbench.explain.references import substitute

    x = data.images
    t = (target >= 0.5).float()[:, None]
    with torch.no_grad():
        if task != "iqa":  # a classifier; the evidence is the object mask where known
            if task == "scenes" and data.masks is None:
                raise ValueError("scenes audit needs object masks")
            blur = substitute(x, "blur")
            base = model(x).softmax(1)
            cls = base.argmax(1, keepdim=True)
            p0 = base.gather(1, cls)[:, 0]
            p_t = model(x * (1 - t) + blur * t).softmax(1).gather(1, cls)[:, 0]
            nan = torch.full_like(p0, float("nan"))
            if data.masks is not None:
                obj = (data.masks >= 0.5).float()[:, None]
                p_o = model(x * (1 - obj) + blur * obj).softmax(1).gather(1, cls)[:, 0]
                drop_o, area_o = p0 - p_o, obj.mean((1, 2, 3))
            else:
                drop_o, area_o = nan, nan
            return pd.DataFrame({"drop_target": (p0 - p_t).numpy(),
                                 "drop_evidence": drop_o.numpy(),
                                 "area_target": t.mean((1, 2, 3)).numpy(),
                                 "area_evidence": area_o.numpy()})
        if data.references is None:
            raise ValueError("IQA audit needs the pristine references")
        r = data.references
        s0, s_ref = model(x), model(r)
        s_t = model(x * (1 - t) + r * t)
        s_c = model(x * t + r * (1 - t))
        gap = s_ref - s0
        ok = gap.abs() > 1e-3
        nan = torch.full_like(gap, float("nan"))
        return pd.DataFrame({
            "recovered_target": torch.where(ok, (s_t - s0) / torch.where(ok, gap, 1), nan).numpy(),
            "recovered_complement": torch.where(ok, (s_c - s0) / torch.where(ok, gap, 1),
                                                nan).numpy(),
            "area_target": t.mean((1, 2, 3)).numpy()})


def _sanity(model: nn.Module, x: torch.Tensor, method: str, tgt, opts: dict,
            original: torch.Tensor, seed: int) -> np.ndarray:
    from qbench.explain import explain
    from qbench.explain.evaluate.randomisation import map_similarity, randomized_models

    *_, (_, rmodel) = randomized_models(model, "cascading", seed)
    rmap = explain(rmodel.eval(), x, tgt, method, None, **opts)
    return map_similarity(original, rmap)["spearman"]


AUDIT_KEYS = ("audit_images", "audit_sanity")  # per-method audit budget, not explainer options


def split_options(opts: dict) -> tuple[dict, int | None, bool]:
    """(explainer options, images (the first k; None = all), run the sanity check) of a
    method's options: ``audit_images`` / ``audit_sanity`` set the audit's budget for an
    expensive method (e.g. Score-CAM on a 1280-channel layer)."""
    opts = dict(opts)
    k = opts.pop("audit_images", None)
    sanity = bool(opts.pop("audit_sanity", True))
    return opts, None if k is None else int(k), sanity


def explain_model(model: nn.Module, task: str, data: AuditImages, methods: list[str],
                  options: dict[str, dict], sanity: bool = True, seed: int = 0,
                  log: Callable[[str], None] | None = None, faith: dict | None = None
                  ) -> tuple[dict[str, torch.Tensor], pd.DataFrame]:
    """Every method's maps for one model, with the model-level per-map checks that do not
    depend on a target: Grad-CAM agreement, deletion / insertion AUC, sanity, features.
    ``faith``: options of the deletion / insertion games (``step``: pixels per step); a
    method's ``audit_images`` / ``audit_sanity`` options limit its images / skip its sanity
    check (the rows say how many images and ``seconds`` what it cost)."""
    from qbench.explain import explain
    from qbench.explain.evaluate import deletion_auc, insertion_auc
    from qbench.explain.evaluate.randomisation import map_similarity

    model = model.eval()
    faith = dict(faith or {})
    x_all = data.images
    tgt_all = _resolved(model, x_all, task)
    maps: dict[str, torch.Tensor] = {}
    rows = []
    grad_cam = explain(model, x_all, tgt_all, "gradcam").detach()
    for method in methods:
        opts, k, method_sanity = split_options(options.get(method, {}))
        k = x_all.shape[0] if k is None else min(k, x_all.shape[0])
        x = x_all[:k]
        tgt = tgt_all if callable(tgt_all) else tgt_all[:k]
        masks = None if data.masks is None else data.masks[:k]
        start = time.time()
        try:
            m = explain(model, x, tgt, method, None, **opts).detach().float()
        except Exception as exc:  # recorded, the audit goes on
            rows.append(pd.DataFrame({"method": [method], "error": [f"{type(exc).__name__}: "
                                                                     f"{exc}"]}))
            if log:
                log(f"  {method}: FAILED {exc}")
            continue
        maps[method] = m
        df = map_features(m, x, masks)
        df["image"] = np.arange(k)
        df["method"] = method
        df["agree_gradcam"] = map_similarity(m, grad_cam[:k])["spearman"]
        df["deletion_auc"] = deletion_auc(model, x, m, tgt, **faith).numpy()
        df["insertion_auc"] = insertion_auc(model, x, m, tgt, **faith).numpy()
        df["sanity_spearman"] = (_sanity(model, x, method, tgt, opts, m, seed)
                                 if sanity and method_sanity else np.nan)
        df["seconds"] = time.time() - start
        rows.append(df)
        if log:
            log(f"  {method}: {time.time() - start:.1f}s ({k} images)")
    return maps, pd.concat(rows, ignore_index=True)


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
                 ) -> tuple[float, float, float]:
    """Mean and percentile bootstrap CI over images of ``values`` (NaNs dropped)."""
    e = stats.mean_ci(values, n_boot, seed, level)
    return e.value, e.low, e.high


FEATURES = ("gini", "entropy", "tv", "e_corners", "e_centre", "e_frame", "e_salient",
            "e_object", "consistency")


def _auroc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def detector(rows: pd.DataFrame, n_boot: int = 1000, folds: int = 4, seed: int = 0) -> dict:
    """AUROC of a logistic-regression detector of marked-model maps from target-agnostic map
    statistics. ``rows``: one row per (seed, role, image) with FEATURES and ``marked`` (0/1).
    Held-out scores come from k-fold over images (leave-one-seed-out when several seeds);
    the CI resamples images (and seeds) with both roles of an image kept together."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = [c for c in FEATURES if c in rows and rows[c].notna().any()]
    df = rows.dropna(subset=cols).reset_index(drop=True)
    if df["marked"].nunique() < 2 or len(df) < 8:
        return {"auroc": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": len(df)}
    seeds = sorted(df["seed"].unique())
    score = np.full(len(df), np.nan)
    if len(seeds) > 1:
        splits = [(df["seed"] != s, df["seed"] == s) for s in seeds]
    else:
        images = np.array(sorted(df["image"].unique()))
        fold_of = {im: k % folds for k, im in
                   enumerate(np.random.default_rng(seed).permutation(images))}
        f = df["image"].map(fold_of)
        splits = [(f != k, f == k) for k in range(folds)]
    for tr, te in splits:
        if df.loc[tr, "marked"].nunique() < 2 or te.sum() == 0:
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        clf.fit(df.loc[tr, cols].to_numpy(), df.loc[tr, "marked"].to_numpy())
        score[te.to_numpy()] = clf.predict_proba(df.loc[te, cols].to_numpy())[:, 1]
    ok = np.isfinite(score)
    y = df["marked"].to_numpy()
    auc = _auroc(y[ok], score[ok])
    # clusters: an image of a seed (both roles); above them the seeds (a two-stage bootstrap)
    keys = (df["seed"].astype(str) + ":" + df["image"].astype(str)).to_numpy()
    names = list(dict.fromkeys(keys))
    clusters = [np.flatnonzero((keys == k) & ok) for k in names]
    outer = [[i for i, k in enumerate(names) if k.startswith(f"{s}:")] for s in seeds]
    boots = stats.cluster_replicates(lambda idx: _auroc(y[idx], score[idx]), clusters, n_boot,
                                     seed, outer)
    lo, hi = stats.interval(boots, 0.95, exact_tail=True)
    return {"auroc": auc, "lo": lo, "hi": hi, "n": int(ok.sum()),
            "features": ",".join(cols), "seeds": len(seeds)}


def function_key(model: nn.Module) -> object:
    """What a model's maps depend on: the model itself, except that a mark branch whose
    output is exactly zero (the ``mark`` family's twins) is its base, whatever the seed of its
    unused first layer, so the twins of every seed are explained once."""
    if hasattr(model, "branch") and hasattr(model, "static") and hasattr(model, "model"):
        out = model.branch[-1]
        if all(torch.count_nonzero(p) == 0 for p in out.parameters()) and \
                torch.count_nonzero(model.static) == 0:
            import hashlib

            h = hashlib.sha256()
            for k, v in model.model.state_dict().items():
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
                         .numpy().tobytes())
            return ("zero-mark", h.hexdigest())
    return id(model)


def run_audit(pairs: list[Pair], data: dict[str, AuditImages], methods: list[str] | None = None,
              options: dict[str, dict] | None = None, sanity: bool = True, n_boot: int = 1000,
              seed: int = 0, log: Callable[[str], None] | None = print,
              faith: dict | None = None) -> dict[str, object]:
    """The whole audit. Returns DataFrames ``maps`` (per method × model × image), ``regions``
    (model-level region removal), ``visibility`` / ``detector`` summaries, ``failures``,
    and ``gallery`` (maps of the first images, for reports). ``faith``: options of the
    deletion / insertion games."""
    import qbench.explain as qe

    methods = list(methods or qe.names())
    options = dict(QUICK_OPTIONS if options is None else options)
    cache: dict[object, tuple[dict, pd.DataFrame]] = {}
    map_rows, region_rows, gallery = [], [], {}
    for pair in pairs:
        d = data[pair.task]
        tmask = target_masks(pair.target, d.images, pair.target_options)
        for role, model, name in (("marked", pair.marked, pair.marked_name),
                                  ("twin", pair.twin, pair.twin_name)):
            key = (pair.task, function_key(model))
            if key not in cache:
                if log:
                    log(f"[audit] explaining {name or role} ({pair.task})")
                cache[key] = explain_model(model, pair.task, d, methods, options, sanity, seed,
                                           log, faith)
            maps, df = cache[key]
            df = df.copy()
            ok = df["method"].isin(maps.keys())
            if "error" not in df:
                df["error"] = None
            e_target = pd.Series(np.nan, index=df.index)
            for method, m in maps.items():
                from qbench.explain.evaluate import energy_pointing_game

                sel = (df["method"] == method).to_numpy()
                e_target[sel] = energy_pointing_game(m, tmask[:m.shape[0]]).numpy()
                for k in range(min(4, m.shape[0])):
                    gallery[(pair.task, pair.family, pair.target, pair.seed, method, role,
                             k)] = \
                        m[k].numpy().astype(np.float16)
            df["e_target"] = e_target
            df.loc[~ok, "e_target"] = np.nan
            df = df.assign(task=pair.task, family=pair.family, target=pair.target,
                           seed=pair.seed, role=role, model=name, marked=int(role == "marked"))
            map_rows.append(df)
            reg = region_effects(model, pair.task, d, tmask)
            reg = reg.assign(task=pair.task, family=pair.family, target=pair.target,
                             seed=pair.seed, role=role, model=name, image=np.arange(len(reg)))
            region_rows.append(reg)
    maps_df = pd.concat(map_rows, ignore_index=True)
    failures = maps_df[maps_df["error"].notna()][["task", "family", "target", "role", "model",
                                                  "method", "error"]]
    maps_df = maps_df[maps_df["error"].isna()].drop(columns=["error"])
    regions = pd.concat(region_rows, ignore_index=True)
    return {"maps": maps_df, "regions": regions, "failures": failures,
            "summary": summarise(maps_df, regions, n_boot, seed), "gallery": gallery}


KEYS = ["task", "family", "target"]  # one audit cell per marked model kind


def _paired(df: pd.DataFrame, col: str) -> np.ndarray:
    """marked − twin per (seed, image) for ``col``."""
    p = df.pivot_table(index=["seed", "image"], columns="role", values=col)
    if "marked" not in p or "twin" not in p:
        return np.array([])
    return (p["marked"] - p["twin"]).to_numpy()


def summarise(maps: pd.DataFrame, regions: pd.DataFrame, n_boot: int = 1000, seed: int = 0
              ) -> pd.DataFrame:
    """One row per (task, family, target, method): every check with a bootstrap CI, and a
    verdict."""
    rows = []
    for (task, family, target, method), g in maps.groupby([*KEYS, "method"]):
        row: dict = {"task": task, "family": family, "target": target, "method": method,
                     "n_images": int(g[g.role == "marked"].shape[0])}
        for col in ("e_target", "agree_gradcam", "deletion_auc", "insertion_auc",
                    "sanity_spearman", "e_object"):
            if col not in g or g[col].isna().all():
                continue
            for role in ("marked", "twin"):
                m, lo, hi = bootstrap_ci(g.loc[g.role == role, col], n_boot, seed)
                row[f"{col}_{role}"], row[f"{col}_{role}_lo"], row[f"{col}_{role}_hi"] = m, lo, hi
            m, lo, hi = bootstrap_ci(_paired(g, col), n_boot, seed)
            row[f"{col}_diff"], row[f"{col}_diff_lo"], row[f"{col}_diff_hi"] = m, lo, hi
        det = detector(g, n_boot, seed=seed)
        row.update({f"detector_{k}": v for k, v in det.items()})
        rows.append(row)
    out = pd.DataFrame(rows)
    reg = region_summary(regions, n_boot, seed)
    if len(out) and len(reg):
        out = out.merge(reg, on=KEYS, how="left")
    out["verdict"] = [verdict(r) for _, r in out.iterrows()]
    return out


def region_summary(regions: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (task, family, target): does the marked model really use the planted region?

    ``uses_target`` = the model's dependence on the planted region beyond the baseline, with a
    CI: scenes, probability drop when the target region is blurred minus the drop when the
    object is blurred; IQA, share of the quality gap recovered by restoring the target region
    minus the target's area share (> 0: the region carries more than its area's share of the
    evidence). ``uses_target_twin`` is the same for the twin, and ``uses_target_gain`` the
    paired marked − twin difference per image: did marking make the model rely on the target?
    A classifier audited on images without object masks (``refs-crops``) has no evidence
    region: its ``uses_target`` is the drop itself, and the paired gain over the twin is what
    the verdict reads."""
    rows = []
    for (task, family, target), g in regions.groupby(KEYS):
        row: dict = {"task": task, "family": family, "target": target}
        a, b = (("drop_target", "drop_evidence") if task != "iqa"
                else ("recovered_target", "area_target"))
        # a classifier without object masks: the drop itself (its twin's is the baseline)
        g = g.assign(uses=g[a] - g[b].fillna(0.0))
        for role in ("marked", "twin"):
            s = g[g.role == role]
            m, lo, hi = bootstrap_ci(s["uses"].to_numpy(), n_boot, seed)
            suffix = "" if role == "marked" else "_twin"
            row[f"uses_target{suffix}"], row[f"uses_target{suffix}_lo"], \
                row[f"uses_target{suffix}_hi"] = m, lo, hi
            row[f"{a}_{role}"] = float(s[a].mean())
            row[f"{b}_{role}"] = float(s[b].mean())
        row["uses_target_gain"], row["uses_target_gain_lo"], row["uses_target_gain_hi"] = \
            bootstrap_ci(_paired(g, "uses"), n_boot, seed)
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(r: pd.Series, margin: float = 0.05) -> str:
    """From the numbers: ``betrays`` (the marked model's maps sit measurably more on the
    planted target than the twin's: CI of the paired difference above ``margin``), then
    ``fooled`` if, in addition, the map shows a region that is not the model's evidence: the
    model's output depends less on the planted region than on the true evidence, or marking
    did not make it rely on the region more than its twin does (CI of the paired gain below
    ``margin``; the function-preserving mark family, whose function *is* the twin's); a method
    that does not betray is ``reveals evidence`` when its maps keep the twin's energy on the
    object (scenes; CI of the object-energy difference above −``margin``), else ``hides``."""
    lo = r.get("e_target_diff_lo", np.nan)
    shows = bool(np.isfinite(lo) and lo > margin)
    uses_hi = r.get("uses_target_hi", np.nan)
    gain_hi = r.get("uses_target_gain_hi", np.nan)
    if shows:
        if (np.isfinite(uses_hi) and uses_hi < 0) or (np.isfinite(gain_hi)
                                                       and gain_hi < margin):
            return "fooled"
        return "betrays"
    obj_lo = r.get("e_object_diff_lo", np.nan)
    if np.isfinite(obj_lo) and obj_lo > -margin:
        return "reveals evidence"
    return "hides"
