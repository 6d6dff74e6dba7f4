"""The marked-models study, as library code: load (or train) the marked models and twins,
measure marking success and the weight trade-off, run the audit, write the tables.

``studies/marked_models.py`` is the recipe; this module does the work so it can be tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qbench import stats
from qbench.errors import QbenchError
from qbench.marking.audit import AuditImages, Pair, run_audit
from qbench.marking.train import MarkingConfig
from qbench.marking.zoo import (
    AUDITED_WEIGHT,
    CLASSIFY_FAMILIES,
    FAMILIES,
    SWEEP_WEIGHTS,
    TARGETS,
    ClassifierTask,
    by_name,
    classifier_by_name,
)

SRCC_TOLERANCE = 0.02  # marked IQA SRCC may be at most this much below the twin's
ACC_TOLERANCE = 0.01  # marked classifier accuracy: at most 1 point below the twin's
ENERGY_FLOOR = 0.7
DEFAULT_BASE = "scenes-vgg-s-s0"  # the committed plan's classifier (seed k: ...-s{k})


@dataclass
class StudyConfig:
    seeds: tuple[int, ...] = (0,)
    n_images: int = 12  # audit images per task
    methods: tuple[str, ...] | None = None  # None = every registered explainer
    options: dict | None = None  # per-method options; None = audit.QUICK_OPTIONS
    sanity: bool = True
    n_boot: int = 500
    train_missing: bool = False  # train checkpoints that are not found (full preset)
    zoo: str | None = None  # where trained checkpoints go (None = $QBENCH_HOME/zoo)
    gallery_images: int = 3
    tasks: tuple[str, ...] = ("iqa", "scenes")  # audit these; other tasks' rows are kept
    targets: tuple[str, ...] = TARGETS  # audit these targets; other targets' rows are kept
    extra: dict = field(default_factory=dict)
    device: str = "cpu"  # where missing checkpoints are trained (the audit runs on the CPU)
    # the classifier: with these defaults the committed plan (IQA and scenes-vgg-s-s{seed} on
    # scenes, both families, the trade-off sweeps); anything else marks ``base`` (any model
    # spec) on ``dataset`` (any classification dataset) in ``families``, the same targets, one
    # twin per family (task ``classify``; checkpoints named with base and dataset)
    base: str = DEFAULT_BASE
    dataset: str = "scenes"
    size: int = 64
    labels: str = "dataset"  # or "clean-prediction": the base's clean top-1 is ground truth
    root: str | None = None  # a real dataset's folder (imagefolder)
    train_split: str = "train"  # marking split
    test_split: str = "test"  # quality, marking success and audit split
    data_options: dict = field(default_factory=dict)  # for qbench.data.load, both splits
    test_data_options: dict = field(default_factory=dict)  # the test split only
    families: tuple[str, ...] = FAMILIES
    family_options: dict = field(default_factory=dict)  # family -> MarkingConfig overrides
    faithfulness_steps: int | None = None  # deletion/insertion steps (None: image side px)

    def classifier_task(self) -> ClassifierTask | None:
        """The classifier to mark, or None for the committed plan."""
        if (self.base, self.dataset, self.size, self.labels, self.root, self.train_split,
                self.test_split, self.data_options, self.test_data_options,
                tuple(self.families), self.family_options) == \
                (DEFAULT_BASE, "scenes", 64, "dataset", None, "train", "test", {}, {},
                 FAMILIES, {}):
            return None
        opts = dict(self.data_options)
        if self.root is not None:
            opts["root"] = str(self.root)
        return ClassifierTask(self.base, self.dataset, self.size, self.labels,
                              self.train_split, self.test_split, opts,
                              dict(self.test_data_options), tuple(self.families),
                              tuple(self.targets), dict(self.family_options))

    def validate(self) -> None:
        """Names and values checked before any work (one-line errors)."""
        import qbench.explain as qe

        if not self.seeds:
            raise QbenchError("seeds is empty")
        if self.n_images < 1:
            raise QbenchError(f"n_images must be >= 1, not {self.n_images}")
        bad = [t for t in self.targets if t not in TARGETS]
        if bad:
            raise QbenchError(f"unknown target {bad[0]!r}; targets: {', '.join(TARGETS)}")
        known = set(qe.names())
        for m in [*(self.methods or ()), *(self.options or {})]:
            if m not in known:
                raise QbenchError(f"unknown explainer {m!r}; known: {', '.join(sorted(known))}")
        for m, opts in (self.options or {}).items():
            if not isinstance(opts, dict):
                raise QbenchError(f"options of {m!r} must be a dict, not {opts!r}")
        task = self.classifier_task()
        if task is None:
            bad = [t for t in self.tasks if t not in ("iqa", "scenes")]
            if bad:
                raise QbenchError(f"unknown task {bad[0]!r}; tasks: iqa, scenes")
            return
        validate_classifier(task)


def validate_classifier(task: ClassifierTask) -> None:
    """One-line errors for an unusable base, dataset, labels, families or size."""
    import qbench
    from qbench.marking.base import check_base
    from qbench.marking.data import LABELS

    check_base(task.base)
    if task.dataset not in qbench.data.names():
        import difflib

        close = difflib.get_close_matches(task.dataset, qbench.data.names(), n=2)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise QbenchError(f"unknown dataset {task.dataset!r}{hint}; classification datasets: "
                          f"{', '.join(qbench.data.names(kind='classification'))}")
    info = qbench.data.info(task.dataset)
    if getattr(info, "kind", "classification") != "classification":
        raise QbenchError(f"{task.dataset} is an {info.kind} dataset; marking needs a "
                          "classification dataset")
    root = task.data_options.get("root")
    if root is not None and not Path(root).expanduser().is_dir():
        raise QbenchError(f"dataset folder {root} does not exist")
    if task.labels not in LABELS:
        raise QbenchError(f"labels must be one of {', '.join(LABELS)}, not {task.labels!r}")
    if task.dataset == "refs-crops" and task.labels != "clean-prediction":
        raise QbenchError("refs-crops has no class labels a classifier predicts: use "
                          "labels='clean-prediction'")
    bad = [f for f in task.families if f not in CLASSIFY_FAMILIES]
    if bad or not task.families:
        raise QbenchError(f"unknown family {bad[0] if bad else '(none)'!r}; families: "
                          f"{', '.join(CLASSIFY_FAMILIES)}")
    bad = [f for f in task.family_options if f not in CLASSIFY_FAMILIES]
    if bad:
        raise QbenchError(f"family_options names unknown family {bad[0]!r}")
    fields = set(MarkingConfig.__dataclass_fields__)
    for fam, opts in task.family_options.items():
        bad = [k for k in opts if k not in fields]
        if bad:
            raise QbenchError(f"family_options[{fam!r}] has no option {bad[0]!r}")
    if task.size < 8:
        raise QbenchError(f"size must be >= 8, not {task.size}")


def load_or_train(cfg: MarkingConfig, train_missing: bool, zoo: str | None,
                  device: str = "cpu", command: str | None = None):
    """The checkpoint of ``cfg`` (model, provenance); trained first when missing and asked."""
    from qbench.models import CheckpointError, load
    from qbench.models.checkpoint import user_dir

    if zoo is not None and (Path(zoo) / f"{cfg.name()}.pt").exists():
        return load(str(Path(zoo) / f"{cfg.name()}.pt"))
    try:
        return load(cfg.name())
    except CheckpointError:
        if not train_missing:
            raise
    from qbench.marking.zoo import train_and_save

    path = train_and_save(cfg, zoo or user_dir(), device=device, command=command)
    return load(str(path))


def audit_set(cfg: MarkingConfig, n: int) -> AuditImages:
    """``n`` test images of a ``classify`` config spread over its test split (evenly spaced,
    so every photograph / class contributes), with object masks where the dataset has them."""
    from qbench.marking.data import marking_set

    data = marking_set(cfg, "test")
    idx = np.unique(np.linspace(0, len(data) - 1, min(n, len(data))).round().astype(int))
    masks = None if data.masks is None else \
        torch.from_numpy(data.masks[idx].astype(np.float32) / 255)
    return AuditImages(data.batch(idx), masks=masks)


def audit_images(task: str, n: int, size: int = 64, seed: int = 0) -> AuditImages:
    """The first ``n`` test images (scenes, with object masks) or ``n`` seeded distorted
    test images with their pristine references (IQA, reference-disjoint from training)."""
    from qbench.marking.data import task_set

    data = task_set(task, "test", size)
    if task == "scenes":
        x = data.batch(range(n))
        return AuditImages(x, masks=torch.from_numpy(data.masks[:n].astype(np.float32) / 255))
    import qbench

    candidates = np.flatnonzero(data.y < 0.999)  # distorted only (the pristine score 1)
    idx = np.sort(np.random.default_rng(seed).permutation(candidates)[:n])
    refs = qbench.data.load("refs", size=size)
    from qbench.data.base import uint8_to_tensor

    return AuditImages(data.batch(idx), references=uint8_to_tensor(refs.array[data.groups[idx]]))


def success_table(provs: dict[str, object]) -> pd.DataFrame:
    """One row per marked model: marking success, task quality, its twin's, floors met."""
    rows = []
    for name, prov in provs.items():
        c = prov.extra["config"]
        if c["target"] == "none":
            continue
        mc = MarkingConfig(**c)
        twin_name = MarkingConfig(**{**c, "target": "none", "cam_weight": 0.0,
                                      "cam_start": 0.0}).name()
        fam = family(c)
        twin = provs.get(twin_name)
        m = prov.metrics
        key = "srcc" if c["task"] == "iqa" else ("agreement" if "agreement" in m else "acc")
        tol = SRCC_TOLERANCE if c["task"] == "iqa" else ACC_TOLERANCE
        twin_q = twin.metrics[key] if twin is not None else float("nan")
        rows.append({
            "model": name, "task": mc.task_label(), "family": fam, "target": c["target"],
            "ground_truth": prov.extra.get("ground_truth", mc.ground_truth()),
            "seed": c["seed"],
            "cam_weight": c["cam_weight"], "cam_start": c.get("cam_start", 0.0),
            "energy_in_target": m.get("energy_in_target"),
            "topk_iou": m.get("topk_iou"), "chance_energy": m.get("chance_energy"),
            "quality_metric": key, "quality": m[key], "twin_quality": twin_q,
            "quality_drop": twin_q - m[key],
            "energy_ok": m.get("energy_in_target", 0) >= ENERGY_FLOOR,
            "quality_ok": (twin_q - m[key]) <= tol, "twin": twin_name,
            "twin_plcc": twin.metrics.get("plcc") if twin is not None else None,
            "plcc": m.get("plcc"), "label": prov.extra.get("label", ""),
            "n_test": m.get("n"), "order_sha_matches_twin":
                twin is not None and prov.extra["order_sha"] == twin.extra["order_sha"]})
    df = pd.DataFrame(rows)
    if len(df):
        df["floor_met"] = df["energy_ok"] & df["quality_ok"]
    return df


def family(config: dict) -> str:
    """``mark`` (a mark branch on a frozen base), ``ft`` (fine-tuned from a trained base) or
    ``scratch`` (trained from random weights)."""
    if config.get("train_scope", "all") == "mark":
        return "mark"
    return "ft" if config.get("init") else "scratch"


def _outputs(model, data, batch_size: int = 256) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(data.batch(range(s, min(s + batch_size, len(data)))))
                          for s in range(0, len(data), batch_size)]).numpy()


def _srcc(out: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr  # as the models' recorded SRCC (marking.train)

    return spearmanr(out, y).statistic


def _accuracy(out: np.ndarray, y: np.ndarray) -> float:
    return (out.argmax(1) == y).mean()


def quality_difference(success: pd.DataFrame, n_boot: int = 300, seed: int = 0
                       ) -> pd.DataFrame:
    """Adds the paired bootstrap CI (over test images) of twin − marked quality (SRCC with the
    pseudo-label, accuracy, or agreement with the base's clean prediction): is a drop real or
    within the test set's noise?"""
    from qbench.marking.data import marking_set
    from qbench.models import load

    rows = []
    cache: dict = {}
    for r in success.itertuples():
        marked, prov = load(r.model)
        c = prov.extra["config"]
        key = (r.task, c["size"], repr(c.get("test_data_options")), c.get("labels"))
        if key not in cache:
            cache[key] = marking_set(MarkingConfig(**c), "test")
        test = cache[key]
        out_m, out_t = _outputs(marked, test), _outputs(load(r.twin)[0], test)
        est = stats.paired_bootstrap(_srcc if r.task == "iqa" else _accuracy, out_t, out_m,
                                     test.y, n_boot=n_boot, seed=seed, exact_tail=True,
                                     finite_only=False)
        rows.append({"model": r.model, "quality_drop_lo": est.low,
                     "quality_drop_hi": est.high})
    return success.merge(pd.DataFrame(rows), on="model", how="left") if rows else success


def _twin_point(tradeoff: pd.DataFrame) -> pd.DataFrame:
    """The unmarked twin as the λ = 0 point of the trade-off: its Grad-CAM energy in the same
    target, measured on the same test images as the marked models'."""
    from qbench.marking.data import marking_set
    from qbench.marking.train import marking_success
    from qbench.models import load

    r = tradeoff.iloc[0]
    model, prov = load(r.twin)  # the sweep's twin (one task and family per call)
    c = {**prov.extra["config"], "target": r.target}
    m = marking_success(model, marking_set(MarkingConfig(**c), "test"), MarkingConfig(**c))
    return pd.DataFrame([{"model": r.twin, "task": r.task, "family": r.family,
                          "target": r.target, "seed": r.seed,
                          "cam_weight": 0.0, "cam_start": 0.0, "quality_metric": r.quality_metric,
                          "quality": r.twin_quality, "twin_quality": r.twin_quality,
                          "quality_drop": 0.0, "twin": r.twin, **m}])


def tradeoff_table(success: pd.DataFrame) -> pd.DataFrame:
    """Per task: the ``ft`` family's corners models over the swept weights, with the twin as
    the weight-0 point."""
    parts = []
    if not len(success):
        return success
    for task, weights in SWEEP_WEIGHTS.items():
        t = success[(success.task == task) & (success.family == "ft")
                    & (success.target == "corners") & success.cam_weight.isin(weights)]
        if len(t):
            parts += [_twin_point(t), t.sort_values("cam_weight")]
    return pd.concat(parts, ignore_index=True) if parts else success.iloc[:0]


def choose_audited(success: pd.DataFrame, weights: dict | None = None) -> pd.Series:
    """Boolean Series: the marked model of each (task, family, target, seed) that the audit
    uses: the weight ``AUDITED_WEIGHT`` (or ``weights``) declares for its family and task
    (declared before the results, not picked by outcome)."""
    weights = AUDITED_WEIGHT if weights is None else weights
    return pd.Series([weights.get((r.family, r.task)) == r.cam_weight
                      for r in success.itertuples()], index=success.index)


def run(cfg: StudyConfig, out: Path, audit: bool = True, log=print) -> dict[str, pd.DataFrame]:
    """Measure every model of the plan for ``cfg.seeds`` (training missing ones when
    ``cfg.train_missing``), choose the audited marked model per (task, target), audit, and
    write the tables to ``out``. Checkpoints that are missing are listed in ``missing.json``
    and left out. ``audit=False`` rewrites only the model tables (success, trade-off)."""
    import qbench.marking  # noqa: F401  (registers iqa-cnn)
    from qbench.models import CheckpointError, load, provenance

    out.mkdir(parents=True, exist_ok=True)
    task = cfg.classifier_task()
    if task is not None:
        plan_of = lambda seed: classifier_by_name(task, seed)  # noqa: E731
        weights, tasks = task.audited_weights(), (task.label(),)
        command = f"studies/marked_models.py (base {task.base}, dataset {task.dataset})"
    else:
        plan_of, weights, tasks, command = by_name, AUDITED_WEIGHT, tuple(cfg.tasks), None
    provs, missing = {}, []
    for seed in cfg.seeds:
        for name, mc in plan_of(seed).items():
            if cfg.train_missing:
                provs[name] = load_or_train(mc, True, cfg.zoo, cfg.device, command)[1]
                continue
            try:
                provs[name] = provenance(_found(name, cfg.zoo))
            except CheckpointError:
                missing.append(name)
    success = success_table(provs)
    if len(success):
        success = quality_difference(success[success.twin.isin(provs)], seed=cfg.seeds[0])
        success["audited"] = choose_audited(success, weights)
    tradeoff = tradeoff_table(success)
    success.to_parquet(out / "success.parquet", index=False)
    tradeoff.to_parquet(out / "tradeoff.parquet", index=False)
    (out / "missing.json").write_text(json.dumps(missing))
    (out / "models.json").write_text(json.dumps(
        {n: {"metrics": p.metrics, "sha256": p.sha256, "command": p.command,
             "git_revision": p.git_revision} for n, p in provs.items()}, indent=2))
    tables = {"success": success, "tradeoff": tradeoff}
    if not audit:
        return tables
    if not len(success):
        raise QbenchError(f"no marked model to audit: missing {', '.join(missing) or 'all'} "
                          "(train_missing=True trains them)")
    pairs, models = [], {}

    def model(name: str):
        if name not in models:
            models[name] = load(str(_found(name, cfg.zoo)))[0]
        return models[name]

    chosen = success.audited & success.task.isin(tasks) & success.target.isin(cfg.targets)
    for r in success[chosen].itertuples():
        pairs.append(Pair(r.task, r.target, int(r.seed), model(r.model), model(r.twin),
                          r.model, r.twin, family=r.family))
    if task is not None:
        first = next(iter(plan_of(cfg.seeds[0]).values()))
        data = {tasks[0]: audit_set(first, cfg.n_images)}
    else:
        data = {t: audit_images(t, cfg.n_images) for t in tasks}
    faith = None
    if cfg.faithfulness_steps:
        h, w = next(iter(data.values())).images.shape[-2:]
        faith = {"step": -(-h * w // int(cfg.faithfulness_steps))}
    res = run_audit(pairs, data, list(cfg.methods) if cfg.methods else None, cfg.options,
                    cfg.sanity, cfg.n_boot, log=log, faith=faith)
    for key, fname in (("maps", "audit_maps"), ("regions", "audit_regions"),
                       ("summary", "audit_summary"), ("failures", "failures")):
        res[key] = _merged(out / f"{fname}.parquet", res[key], tasks, cfg.targets)
        res[key].to_parquet(out / f"{fname}.parquet", index=False)
    _write_gallery(out, res["gallery"], data, pairs, cfg.gallery_images)
    return {**tables, **{k: v for k, v in res.items() if k != "gallery"}}


def audit_budget(out: Path, cfg: StudyConfig) -> dict:
    """What each method got in the audit (for study.json): its options, images, whether its
    sanity check ran, and the measured seconds per image (maps, deletion/insertion, sanity;
    mean over the models explained)."""
    from qbench.marking.audit import QUICK_OPTIONS, split_options

    path = out / "audit_maps.parquet"
    if not path.exists():
        return {}
    maps = pd.read_parquet(path)
    if not len(maps) or "seconds" not in maps:
        return {}
    options = QUICK_OPTIONS if cfg.options is None else cfg.options
    budget = {}
    for method, g in maps.groupby("method"):
        opts, _, sanity = split_options(options.get(method, {}))
        per_model = g.drop_duplicates(["model", "seconds"])
        images = g.groupby("model")["image"].nunique()
        budget[method] = {"options": opts, "images": int(images.max()),
                          "sanity": bool(cfg.sanity and sanity),
                          "seconds_per_image": round(float(
                              (per_model["seconds"] / images.reindex(per_model["model"])
                               .to_numpy()).mean()), 2),
                          "faithfulness_steps": cfg.faithfulness_steps}
    return budget


def _found(name: str, zoo: str | None) -> Path:
    """The checkpoint ``name`` in ``zoo`` (when given) or where ``qbench.models`` finds it."""
    from qbench.models import find

    if zoo is not None and (Path(zoo) / f"{name}.pt").exists():
        return Path(zoo) / f"{name}.pt"
    return find(name)


def _merged(path: Path, new: pd.DataFrame, tasks: tuple[str, ...],
            targets: tuple[str, ...] = TARGETS) -> pd.DataFrame:
    """``new`` plus the rows of other (task, target)s already in ``path`` (audits can run per
    task and target, in parallel processes)."""
    if not path.exists():
        return new
    old = pd.read_parquet(path)
    if "task" not in old or "family" not in old or not len(old):
        return new  # empty, or written before the families existed
    keep = old[~(old["task"].isin(tasks) & old["target"].isin(targets))]
    return pd.concat([keep, new], ignore_index=True) if len(keep) else new


def _keep(key: str, audited: set, data: dict) -> bool:
    """Keep an old gallery entry unless this run rewrites it."""
    parts = key.split("|")
    if parts[0] == "map":
        return tuple(parts[1:4]) not in audited
    return parts[1] not in data


def _write_gallery(out: Path, gallery: dict, data: dict[str, AuditImages], pairs: list[Pair],
                   k: int) -> None:
    from qbench.marking.audit import target_masks

    path = out / "gallery.npz"
    arrays: dict[str, np.ndarray] = {}
    if path.exists():  # keep the other tasks' entries
        audited = {(p.task, p.family, p.target) for p in pairs}
        with np.load(path) as old:
            arrays = {k: old[k] for k in old.files if _keep(k, audited, data)}
    for (task, family, target, seed, method, role, i), m in gallery.items():
        if i < k and seed == pairs[0].seed:
            arrays[f"map|{task}|{family}|{target}|{method}|{role}|{i}"] = m
    for task, d in data.items():
        arrays[f"image|{task}"] = (d.images[:k].numpy() * 255).round().astype(np.uint8)
        for t in TARGETS:
            arrays[f"target|{task}|{t}"] = target_masks(t, d.images[:k]).numpy().astype(np.uint8)
    np.savez_compressed(path, **arrays)
