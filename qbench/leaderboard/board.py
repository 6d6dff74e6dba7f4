"""The leaderboard: one record per metric, scores in the results store, tables recomputed.

A leaderboard folder holds ``entries.json`` (per metric: how to create it, its declared
metadata, its admission probe, when it was added), ``store/`` (the scoring engine's rows) and
``items-<testset>.parquet`` (each item's reference, distortion, level and ground truth).
Tables are computed from these files only, so ``qbench leaderboard show`` never rescores.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from qbench.atomic import atomic_write
from qbench.engine import score
from qbench.errors import QbenchError
from qbench.leaderboard import stats
from qbench.leaderboard.probe import Check, ProbeReport, probe
from qbench.leaderboard.testsets import EMBEDDED, TestSet
from qbench.metrics import create
from qbench.store import CLEAN, Store

DEFAULT_DIR = Path("results/leaderboard")


class Rejected(QbenchError):
    """A metric failed its admission probe; the leaderboard was not changed."""

    def __init__(self, report: ProbeReport) -> None:
        super().__init__(f"{report.metric} rejected: {report.reason}")
        self.report = report


class Leaderboard:
    def __init__(self, folder: str | Path = DEFAULT_DIR) -> None:
        self.folder = Path(folder)
        self.store = Store(self.folder / "store")

    # -- entries ----------------------------------------------------------------------------
    @property
    def entries_path(self) -> Path:
        return self.folder / "entries.json"

    def entries(self) -> dict[str, dict]:
        return json.loads(self.entries_path.read_text()) if self.entries_path.exists() else {}

    def admit(self, spec: str) -> dict:
        """Create ``spec``, probe it, and record it; raises :class:`Rejected` on failure."""
        try:
            metric = create(spec)
        except QbenchError as exc:
            raise Rejected(ProbeReport(spec, [_failed_check("loads", exc)])) from None
        report = probe(metric, spec)
        if not report.passed:
            raise Rejected(report)
        entry = {"spec": spec, "info": asdict(metric.info), "probe": report.as_dict(),
                 "added": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        entries = self.entries()
        entries[metric.info.name] = entry
        atomic_write(self.entries_path, json.dumps(entries, indent=2, default=list).encode())
        return entry

    # -- scoring ----------------------------------------------------------------------------
    def run(self, testset: TestSet, names: list[str] | None = None, progress: bool = True,
            batch_size: int = 8, engine: str = "local", device: str = "cpu") -> dict:
        """Score the entries ``names`` (default: all) on ``testset`` into the store
        (``engine``: local or ray, same rows; ``device``: where the metrics run)."""
        entries = self.entries()
        chosen = names or list(entries)
        missing = [n for n in chosen if n not in entries]
        if missing:
            raise QbenchError(f"not on the leaderboard: {', '.join(missing)} "
                              "(add them with `qbench leaderboard add`)")
        self._write_items(testset)
        totals = {}
        for name in chosen:  # one run per metric: resumable and independent
            metric = create(entries[name]["spec"], device=device)
            config = {**testset.config, "metric": name, "version": metric.info.version}
            if device != "cpu":
                config["device"] = device
            run = self.store.begin_run(config, seeds=[0])
            self.store.record_scorers(run, [asdict(metric.info)])
            s = score(self.store, run, testset.dataset, testset.conditions, [metric],
                      batch_size=batch_size, progress=progress, engine=engine)
            self.store.end_run(run, "finished", **asdict(s))
            totals[name] = asdict(s)
        return totals

    def _write_items(self, testset: TestSet) -> None:
        path = self.folder / f"items-{testset.key}.parquet"
        meta = self.folder / f"items-{testset.key}.json"
        if not testset.items.empty:
            testset.items.to_parquet(path)
        configs = json.loads(meta.read_text()).get("configs", []) if meta.exists() else []
        if testset.config not in configs:  # runs with other options (fewer references for a
            configs.append(testset.config)  # slow metric) add to the set; the rows say which
        atomic_write(meta, json.dumps({"key": testset.key, "dataset": testset.dataset.key,
                                       "ground_truth": testset.ground_truth,
                                       "configs": configs}, indent=2).encode())

    def testsets(self) -> list[str]:
        return sorted(p.stem.removeprefix("items-") for p in self.folder.glob("items-*.json"))

    # -- tables -----------------------------------------------------------------------------
    def table(self, testset: str, n_boot: int = 1000) -> tuple[pd.DataFrame, dict]:
        """One row per metric with its statistics, CIs and counts; plus the per-distortion
        breakdown ({metric: DataFrame})."""
        meta_path = self.folder / f"items-{testset}.json"
        if not meta_path.exists():
            raise QbenchError(f"no scores for test set {testset!r} in {self.folder} "
                              f"(run `qbench leaderboard run --testset {testset}`)")
        meta = json.loads(meta_path.read_text())
        rows = self.store.query("SELECT * FROM rows WHERE dataset = ?", [meta["dataset"]])
        fails = self.store.query("SELECT * FROM failures WHERE dataset = ?", [meta["dataset"]])
        entries = self.entries()
        out, breakdown = [], {}
        for name, entry in entries.items():
            info = entry["info"]
            r = rows[rows.scorer == name]
            f = fails[fails.scorer == name]
            if testset == EMBEDDED:
                r = r[r.corruption.str.startswith("kadid:") | (r.corruption == CLEAN)]
                row, per = _level_order_row(r, info["higher_is_better"], n_boot)
            else:
                items = pd.read_parquet(self.folder / f"items-{testset}.parquet")
                row, per = _mos_row(r, items, info["higher_is_better"], n_boot)
            trained = [t for t in info.get("trained_on", []) if t == testset]
            out.append({"metric": name, "kind": info["kind"],
                        "higher_is_better": info["higher_is_better"], **row,
                        "n_scored": len(r), "n_failed": len(f),
                        "top_failure": f.reason.value_counts().index[0] if len(f) else "",
                        "contaminated": bool(trained)})
            breakdown[name] = per
        table = pd.DataFrame(out)
        if not table.empty:
            key = "consistency" if testset == EMBEDDED else "srcc"
            table = table.sort_values(key, ascending=False, na_position="last")
        return table.reset_index(drop=True), breakdown


def _failed_check(name: str, exc: Exception) -> Check:
    return Check(name, False, str(exc)[:300])


def _est(prefix: str, e: stats.Estimate) -> dict:
    return {prefix: e.value, f"{prefix}_low": e.low, f"{prefix}_high": e.high}


def _cluster_mean(values: pd.DataFrame, n_boot: int, seed: int = 0) -> stats.Estimate:
    """Mean of per-(reference, type) values with a bootstrap CI resampled by reference."""
    per_ref = values.groupby("item").value.mean()
    v = per_ref.to_numpy()
    if len(v) == 0:
        return stats.Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(v), size=(n_boot, len(v)))
    boots = v[draws].mean(axis=1)
    return stats.Estimate(float(values.value.mean()), float(np.percentile(boots, 2.5)),
                          float(np.percentile(boots, 97.5)), len(values))


def _level_order_row(r: pd.DataFrame, higher_is_better: bool, n_boot: int):
    """Severity-rank consistency (mean within-(reference, type) Spearman with -level) and
    pairwise level accuracy; CIs resample reference images."""
    if r.empty:
        nan = stats.Estimate(float("nan"), float("nan"), float("nan"), 0)
        return {**_est("consistency", nan), **_est("pair_accuracy", nan)}, pd.DataFrame()
    score = stats.oriented(r.value.to_numpy(), higher_is_better)
    r = r.assign(score=score)
    clean = r[r.corruption == CLEAN].set_index("item").score
    groups = []
    for (item, corr), g in r[r.corruption != CLEAN].groupby(["item", "corruption"]):
        s, lv = g.score.to_numpy(), g.severity.to_numpy()
        if item in clean.index:  # NR metrics: the clean image is level 0
            s, lv = np.append(s, clean[item]), np.append(lv, 0)
        one = np.zeros(len(s), int)
        groups.append({"item": item, "corruption": corr,
                       "rho": stats.level_order_consistency(s, lv, one),
                       "acc": stats.level_pair_accuracy(s, lv, one)})
    g = pd.DataFrame(groups, columns=["item", "corruption", "rho", "acc"]).dropna(subset=["rho"])
    cons = _cluster_mean(g.rename(columns={"rho": "value"}), n_boot)
    acc = _cluster_mean(g.rename(columns={"acc": "value"}), n_boot)
    per = g.groupby("corruption").agg(consistency=("rho", "mean"),
                                      pair_accuracy=("acc", "mean"),
                                      n_groups=("rho", "size")).reset_index()
    return {**_est("consistency", cons), **_est("pair_accuracy", acc)}, per


def _mos_row(r: pd.DataFrame, items: pd.DataFrame, higher_is_better: bool, n_boot: int):
    """PLCC (raw, logistic), SRCC, KRCC against MOS with CIs resampled by reference image."""
    joined = r[r.corruption == CLEAN].merge(items, on="item", how="inner")
    est = stats.summarize(joined.value.to_numpy(), joined.target.to_numpy(),
                          joined.ref.to_numpy(), higher_is_better, n_boot=n_boot)
    row = {}
    for key in ("plcc", "plcc_logistic", "srcc", "krcc"):
        row.update(_est(key, est[key]))
    per = []
    for dist, g in joined.groupby("distortion"):
        if len(g) >= 3:
            s = stats.oriented(g.value.to_numpy(), higher_is_better)
            per.append({"distortion": dist, "srcc": stats.srcc(s, g.target.to_numpy()),
                        "n": len(g)})
    return row, pd.DataFrame(per)
