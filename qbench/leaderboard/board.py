"""The leaderboard: one record per metric, scores in the results store, tables recomputed.

A leaderboard folder holds ``entries.json`` (per metric: how to create it, its declared
metadata, its admission probe, when it was added), ``store/`` (the scoring engine's rows) and
``items-<testset>.parquet`` (each item's reference, distortion, level and ground truth).
Tables are computed from these files only, so ``qbench leaderboard show`` never rescores.

An entry is keyed by its metric's name, and the name stands for one implementation: the spec
it was created from. A second spec whose metric has a name already on the board is refused,
and so is a plugin naming itself after one of qbench's own metrics (``pyiqa:psnr``): their
rows would be pooled with the real ones. Re-admitting the same spec at a new version replaces
the entry; a table only reads the runs of the entry's current version, so the rows of two
versions are never pooled either, and ``run`` refuses a spec whose code now reports another
version than the one admitted.

No statistic is shown on too few items: a metric needs at least :data:`MIN_ITEMS` scored items
from at least :data:`MIN_REFS` reference images (the bootstrap resamples reference images; on
fewer, a CI of [1.000, 1.000] says nothing). Below that the row says how many it has and how
many it needs.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from qbench import stats
from qbench.atomic import atomic_write
from qbench.engine import score
from qbench.engine.guard import global_state_kept
from qbench.errors import QbenchError
from qbench.leaderboard.probe import Check, ProbeReport, probe
from qbench.leaderboard.testsets import EMBEDDED, TestSet
from qbench.metrics import create
from qbench.store import CLEAN, Store

DEFAULT_DIR = Path("results/leaderboard")
MIN_ITEMS = 10  # scored items a statistic needs
MIN_REFS = 3  # reference images (bootstrap clusters) a statistic needs


class Rejected(QbenchError):
    """A metric failed its admission probe; the leaderboard was not changed."""

    def __init__(self, report: ProbeReport) -> None:
        super().__init__(f"{report.metric} rejected: {report.reason}")
        self.report = report


class NameTaken(QbenchError):
    """A metric's name already stands for another implementation; the board was not changed."""


def _claimed_name(spec: str, name: str) -> str | None:
    """Why ``name`` is not ``spec``'s to take: it is the name of one of qbench's own metrics
    (a registered name or a ``pyiqa:``/``task:`` name) and ``spec`` does not resolve there."""
    from qbench.metrics.registry import REGISTRY

    if name == spec:
        return None
    claimed = REGISTRY.prefix_of(name)
    if claimed is not None:
        own = REGISTRY.prefix_of(spec)
        return None if own is not None and own[0] is claimed[0] else \
            f"{name.partition(':')[0]}: names belong to qbench's own metrics"
    if name in REGISTRY.names():
        return "it is the name of a metric qbench registers"
    return None


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
        """Create ``spec``, probe it, and record it; raises :class:`Rejected` on failure and
        :class:`NameTaken` when its metric's name stands for another implementation."""
        with global_state_kept():  # a plugin's constructor or calls cannot change the caller's
            try:
                metric = create(spec)
            except QbenchError as exc:
                raise Rejected(ProbeReport(spec, [_failed_check("loads", exc)])) from None
            name, version = metric.info.name, metric.info.version
            why = _claimed_name(spec, name)
            if why:
                raise NameTaken(f"{spec} names its metric {name!r}, which it may not take "
                                f"({why}): give it a name of its own (rows are keyed by name)")
            other = self.entries().get(name)
            if other is not None and other["spec"] != spec:
                raise NameTaken(f"{name!r} is already on the board from {other['spec']} "
                                f"(version {other['info']['version']}); {spec} (version "
                                f"{version}) would be pooled with it: give it a name of its own")
            report = probe(metric, spec)
        if not report.passed:
            raise Rejected(report)
        entry = {"spec": spec, "info": asdict(metric.info), "probe": report.as_dict(),
                 "added": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        entries = self.entries()
        entries[name] = entry
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
        metrics = {}
        for name in chosen:  # every entry checked before anything is scored
            spec, admitted = entries[name]["spec"], entries[name]["info"]["version"]
            with global_state_kept():
                metric = create(spec, device=device)
            if (metric.info.name, metric.info.version) != (name, admitted):
                raise QbenchError(
                    f"{spec} now creates {metric.info.name!r} version {metric.info.version}, but "
                    f"{name!r} version {admitted} was admitted: re-admit it with `qbench "
                    f"leaderboard add {spec}` (the rows of each version are kept apart)")
            metrics[name] = metric
        for name, metric in metrics.items():  # one run per metric: resumable and independent
            config = {**testset.config, "metric": name, "version": metric.info.version}
            if device != "cpu":
                config["device"] = device
            run = self.store.begin_run(config, seeds=[0])
            self.store.record_scorers(run, [asdict(metric.info)])
            s = score(self.store, run, testset.dataset, testset.conditions, [metric],
                      batch_size=batch_size, progress=progress, engine=engine)
            self.store.end_run(run, "finished", **asdict(s))
            totals[name] = {**asdict(s), "run": run}
        return totals

    def outcome(self, name: str, testset: str, total: dict) -> str:
        """One honest line on what a :meth:`run` of ``name`` did (``total``: its summary)."""
        scored, failed = total["written"] + total["reused"], total["failed"]
        f = self.store.failures(total["run"]) if failed and total.get("run") else pd.DataFrame()
        top = (f"; most common failure: {f.reason.value_counts().index[0][:160]}"
               if len(f) else "")
        head = f"scored {name} on {testset}" if scored else f"nothing scored: {name} on {testset}"
        return (f"{head}: {scored} items scored ({total['reused']} reused), {failed} failed"
                f"{top}")

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
            runs = self._runs_of(name, info.get("version"))  # this version's rows only
            r = rows[(rows.scorer == name) & rows.run.isin(runs)]
            f = fails[(fails.scorer == name) & fails.run.isin(runs)]
            if testset == EMBEDDED:
                r = r[r.corruption.str.startswith("kadid:") | (r.corruption == CLEAN)]
                row, per = _level_order_row(r, info["higher_is_better"], n_boot)
            else:
                items = pd.read_parquet(self.folder / f"items-{testset}.parquet")
                row, per = _mos_row(r, items, info["higher_is_better"], n_boot)
            trained = [t for t in info.get("trained_on", []) if t == testset]
            note = row.pop("note", "")
            out.append({"metric": name, "kind": info["kind"],
                        "higher_is_better": info["higher_is_better"], **row,
                        "n_scored": len(r), "n_failed": len(f), "note": note,
                        "top_failure": f.reason.value_counts().index[0] if len(f) else "",
                        "contaminated": bool(trained)})
            breakdown[name] = per
        table = pd.DataFrame(out)
        if not table.empty:
            key = "consistency" if testset == EMBEDDED else "srcc"
            table = table.sort_values(key, ascending=False, na_position="last")
        return table.reset_index(drop=True), breakdown

    def _runs_of(self, name: str, version: str | None) -> set[str]:
        """The store's runs that may hold ``name``'s rows: those :meth:`run` made for ``name``
        at ``version`` (the entry's implementation; any version when the entry records none),
        and runs it did not make (no ``metric`` in their config: written by hand or older)."""
        out = set()
        for m in self.store.manifests():
            config = m.get("config", {})
            if "metric" not in config or (config["metric"] == name and (
                    version is None or str(config.get("version")) == str(version))):
                out.add(m["run"])
        return out


def too_few(n_items: int, n_refs: int) -> str:
    """Why no statistic is shown on ``n_items`` items from ``n_refs`` references ('' if none)."""
    if n_items >= MIN_ITEMS and n_refs >= MIN_REFS:
        return ""
    return (f"too few items for a statistic: {n_items} scored from {n_refs} reference images; "
            f"need at least {MIN_ITEMS} items from at least {MIN_REFS} reference images")


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
    e = stats.mean_ci(v, n_boot, seed, exact_tail=True)  # per-reference means resampled
    return stats.Estimate(float(values.value.mean()), e.low, e.high, len(values))


def _level_order_row(r: pd.DataFrame, higher_is_better: bool, n_boot: int):
    """Severity-rank consistency (mean within-(reference, type) Spearman with -level) and
    pairwise level accuracy; CIs resample reference images."""
    note = too_few(len(r), r["item"].nunique() if len(r) else 0)
    if r.empty or note:
        nan = stats.Estimate(float("nan"), float("nan"), float("nan"), 0)
        return ({**_est("consistency", nan), **_est("pair_accuracy", nan), "note": note},
                pd.DataFrame())
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
    per = []  # the per-distortion breakdown says its own n
    for dist, g in joined.groupby("distortion"):
        if len(g) >= 3:
            s = stats.oriented(g.value.to_numpy(), higher_is_better)
            per.append({"distortion": dist, "srcc": stats.srcc(s, g.target.to_numpy()),
                        "n": len(g)})
    note = too_few(len(joined), joined["ref"].nunique() if len(joined) else 0)
    if note:
        nan = stats.Estimate(float("nan"), float("nan"), float("nan"), 0)
        row = {"note": note}
        for key in ("plcc", "plcc_logistic", "srcc", "krcc"):
            row.update(_est(key, nan))
        return row, pd.DataFrame(per)
    est = stats.summarize(joined.value.to_numpy(), joined.target.to_numpy(),
                          joined.ref.to_numpy(), higher_is_better, n_boot=n_boot)
    row = {}
    for key in ("plcc", "plcc_logistic", "srcc", "krcc"):
        row.update(_est(key, est[key]))
    return row, pd.DataFrame(per)
