"""Reports open in a real browser: built from tiny stored results, loaded in headless Chromium,
no console errors, no network request, every figure rendered, a summary generated from the
numbers. Also: `qbench report` dispatch and the landing page (no browser needed for those).

Chromium and chromedriver come from Debian (`make test` installs them when it can); without
them the browser tests skip with the reason, the others still run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from qbench.cli import cli
from qbench.errors import QbenchError
from qbench.leaderboard import testsets
from qbench.leaderboard.board import Leaderboard
from qbench.metrics import create
from qbench.report import build_all, build_report, detect, study_modules
from qbench.store import CLEAN, Store
from tests.dataset_fixtures import write_kadid

# --------------------------------------------------------------------------- tiny results


def _write_synthetic_store(folder: Path, good: str, bad: str) -> None:
    """A scoring store where ``good`` falls with severity on every image and ``bad`` rises
    (both higher-is-better), over 4 images x 2 corruptions x 3 severities."""
    store = Store(folder / "store")
    run = store.begin_run({"t": "browser", "good": good})
    store.record_scorers(run, [{"name": n, "kind": "NR", "higher_is_better": True}
                               for n in (good, bad)])
    rows = []
    for i in range(4):
        for corr, sevs in ((CLEAN, [0]), ("blur", [1, 2, 3]), ("noise", [1, 2, 3])):
            for s in sevs:
                base = {"run": run, "dataset": "toy", "item": f"im{i}", "corruption": corr,
                        "severity": s, "seed": 0}
                rows.append({**base, "scorer": good, "value": 1.0 - 0.2 * s + 0.01 * i})
                rows.append({**base, "scorer": bad, "value": 0.1 * s + 0.01 * i * (s % 2)})
    store.write_rows(rows)
    store.write_failures([{"run": run, "dataset": "toy", "item": "im9", "corruption": "blur",
                           "severity": 1, "seed": 0, "scorer": bad, "reason": "too dark"}])
    store.end_run(run)


def _write_synthetic_board(folder: Path, good: str, bad: str) -> None:
    """A leaderboard (entries, items meta, store rows) on the embedded test set where
    ``good`` orders the levels right and ``bad`` mostly backwards."""
    board = Leaderboard(folder)
    entries = {n: {"spec": n, "info": {"name": n, "kind": "FR", "higher_is_better": True,
                                       "trained_on": []}, "added": "2026-01-01T00:00:00+00:00"}
               for n in (good, bad)}
    board.entries_path.parent.mkdir(parents=True, exist_ok=True)
    board.entries_path.write_text(json.dumps(entries))
    (folder / "items-refs-kadid.json").write_text(json.dumps(
        {"key": "refs-kadid", "dataset": "refs/all", "ground_truth": "level order", "configs": []}))
    run = board.store.begin_run({"t": "synthetic board", "good": good})
    rows = []
    for i in range(4):
        for corr in ("kadid:gaussian_blur", "kadid:jpeg"):
            for lv in (1, 2, 3):
                base = {"run": run, "dataset": "refs/all", "item": f"ref{i}",
                        "corruption": corr, "severity": lv, "seed": 0}
                rows.append({**base, "scorer": good, "value": 10.0 - lv})
                wobble = -1.0 if (i == 0 and lv == 1) else 0.0  # not a perfect -1
                rows.append({**base, "scorer": bad, "value": float(lv) + wobble})
    board.store.write_rows(rows)
    board.store.end_run(run)


def _write_tiny_real_board(folder: Path) -> None:
    """A leaderboard made the real way: a plugin admitted through the probe, a toy metric
    entered directly, both scored by the engine on the embedded test set (3 references x 2
    types x 2 levels) and on a 12-image KADID-10k fixture (MOS ground truth)."""
    board = Leaderboard(folder)
    board.admit("tests.plugins:GoodMeanAbsError")
    spec = "tests.toy_metrics:MeanBrightness"
    metric = create(spec)
    entries = board.entries()
    entries[metric.info.name] = {"spec": spec, "info": asdict(metric.info),
                                 "added": "2026-01-01T00:00:00+00:00"}
    board.entries_path.write_text(json.dumps(entries, default=list))
    board.run(testsets.refs_kadid(n_refs=3, size=32, levels=(1, 3),
                                  types=["kadid:gaussian_blur", "kadid:white_noise"]),
              progress=False)
    board.run(testsets.real("kadid10k", write_kadid(folder.parent / "kadid")), progress=False)


def _rankiqa_tables(folder: Path) -> None:
    """The tables studies/rankiqa.py writes, with made-up numbers (schema as of its report)."""
    import numpy as np
    import pandas as pd

    from qbench.report.rankiqa import MODELS

    rng = np.random.default_rng(0)
    types = ["rankiqa-live:wn", "rankiqa-live:jpeg", "all"]
    pd.DataFrame([{"set": "live", "model": m, "type": t, "accuracy": float(rng.random()),
                   "pairs": 30} for m in MODELS for t in types]).to_parquet(
        folder / "ranking.parquet")
    pd.DataFrame([{"set": "live", "model": m, "srcc": float(rng.random()),
                   "plcc": float(rng.random()), "n": 12} for m in MODELS]).to_parquet(
        folder / "correlations.parquet")
    pd.DataFrame([{"levels": lv, "accuracy": 0.5 + 0.05 * lv, "srcc": 0.1 * lv,
                   "plcc": 0.1 * lv} for lv in (2, 3, 4)]).to_parquet(folder / "ablation.parquet")
    pd.DataFrame([{"set": "live", "model": m, "step": k, "loss": 1.0 / (k + 1)}
                  for m in MODELS[1:] for k in (0, 10, 20)]).to_parquet(
        folder / "training.parquet")
    meta = {"study": "rankiqa", "preset": "tiny", "seed": 0, "git_revision": "0" * 40,
            "created": "2026-01-01T00:00:00+00:00", "seconds": 1.0,
            "config": {"sets": ["live"], "size": 64, "crop": 32, "n_crops": 2,
                       "rank_steps": 20, "ft_steps": 20},
            "splits": {"live": {"test_refs": ["a", "b"], "ground_truth": "pseudo-labels"}}}
    (folder / "study.json").write_text(json.dumps(meta))


def _explainers_tables(folder: Path) -> None:
    """The tables studies/explainers.py writes, with made-up numbers (schema as of its
    report), including the gallery of images with maps."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    models, methods = ["cnn"], ["gradcam", "cameras"]
    metrics = ["deletion_auc_zero", "energy_pointing_game", "fine_detail"]
    pd.DataFrame([{"model": m, "method": k, "metric": x, "value": v, "low": v - 0.1,
                   "high": v + 0.1, "n": 4} for m in models for k in methods for x in metrics
                  for v in [float(rng.random())]]).to_parquet(folder / "summary.parquet")
    pd.DataFrame([{"model": "cnn", "a": "cameras", "b": "gradcam", "metric": x, "diff": 0.1,
                   "low": 0.05, "high": 0.2, "mean_a": 0.5, "mean_b": 0.4, "n": 4,
                   "verdict": "better"} for x in ("fine_detail", "deletion_auc_zero")]
                 ).to_parquet(folder / "comparisons.parquet")
    pd.DataFrame([{"model": "cnn", "method": k, "mode": mode, "depth": d, "layer": f"l{d}",
                   "image": i, "spearman": 1.0 / d, "spearman_abs": 1.0 / d, "ssim": 0.5,
                   "hog": 0.5} for k in methods for mode in ("cascading", "independent")
                  for d in (1, 2) for i in range(2)]).to_parquet(folder / "sanity.parquet")
    pd.DataFrame([{"model": "cnn", "method": k, "image": i, "metric": "pointing_game",
                   "value": 1.0} for k in methods for i in range(2)]).to_parquet(
        folder / "per_image.parquet")
    (folder / "failures.json").write_text("[]")
    np.savez(folder / "gallery.npz", model="cnn", item_ids=np.array(["a", "b"]),
             labels=np.array(["disc", "star"]), predicted=np.array(["disc", "disc"]),
             images=rng.random((2, 3, 24, 24)).astype(np.float32),
             masks=(rng.random((2, 24, 24)) > 0.5).astype(np.float32),
             methods=np.array(methods), maps=rng.random((2, 2, 24, 24)).astype(np.float32))
    meta = {"study": "explainers", "preset": "tiny", "seed": 0, "git_revision": "0" * 40,
            "seconds": 1.0, "config": {"methods": methods, "models": models, "images": 2}}
    (folder / "study.json").write_text(json.dumps(meta))


def _quality_vs_accuracy_tables(folder: Path) -> None:
    """The study's own analysis (qbench.causal) on its planted synthetic sweep, minimal sizes."""
    from qbench.causal.analysis import analyze
    from qbench.causal.synthetic import planted_table

    df, info, _ = planted_table(n_items=12, n_groups=4, strengths={"blur": 1.0, "tint": 0.1},
                                severities=(1, 3, 5), seed=4)
    analyze(df, info, folder, aligned=("aligned",), n_boot=20,
            refute_accuracy_severities=(5,), refute_metric_severities=(), num_simulations=2,
            gcm_rows=120, gcm_options={"num_samples": 30, "max_runs": 2}, progress=False)
    (folder / "study.json").write_text(json.dumps(
        {"study": "quality_vs_accuracy", "preset": "tiny", "seed": 0}))


def _marked_models_tables(folder: Path) -> None:
    """The tables the marked-models study writes, with made-up numbers (schema as of its
    report): success / trade-off over the CAM-loss weight, audit summary and regions, and a
    gallery of images, target masks and maps."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    success = pd.DataFrame([
        {"model": f"m-{w}", "task": "iqa", "family": "ft", "target": "corners", "seed": 0,
         "cam_weight": w, "energy_in_target": e, "topk_iou": 0.5, "chance_energy": 0.25,
         "quality_metric": "srcc", "quality": q, "twin_quality": 0.8, "quality_drop": 0.8 - q,
         "floor_met": e >= 0.7 and 0.8 - q <= 0.02, "audited": w == 1.0}
        for w, e, q in [(0.1, 0.5, 0.8), (1.0, 0.75, 0.79), (10.0, 0.95, 0.6)]])
    success.to_parquet(folder / "success.parquet")
    success.to_parquet(folder / "tradeoff.parquet")
    methods = ["gradcam", "gradient"]
    pd.DataFrame([{"task": "iqa", "family": "ft", "target": "corners", "method": m,
                   "verdict": v,
                   "n_images": 4, "e_target_diff": d, "agree_gradcam_marked": 0.5,
                   "detector_auroc": a, "detector_lo": a - 0.1, "detector_hi": a + 0.1}
                  for m, v, d, a in [("gradcam", "betrays", 0.4, 0.9),
                                     ("gradient", "hides", 0.0, 0.5)]]).to_parquet(
        folder / "audit_summary.parquet")
    pd.DataFrame([{"task": "iqa", "family": "ft", "target": "corners", "role": r,
                   "recovered_target": v,
                   "area_target": 0.1, "drop_target": 0.0, "drop_evidence": 0.0}
                  for r, v in (("marked", 0.6), ("twin", 0.1))]).to_parquet(
        folder / "audit_regions.parquet")
    pd.DataFrame({"model": pd.Series([], dtype=str), "reason": pd.Series([], dtype=str)}
                 ).to_parquet(folder / "failures.parquet")
    arrays = {"image|iqa": (rng.random((2, 3, 24, 24)) * 255).astype(np.uint8),
              "target|iqa|corners": (rng.random((2, 24, 24)) > 0.8).astype(np.uint8)}
    for m in methods:
        for role in ("marked", "twin"):
            for i in range(2):
                arrays[f"map|iqa|ft|corners|{m}|{role}|{i}"] = rng.random((24, 24))
    np.savez_compressed(folder / "gallery.npz", **arrays)
    (folder / "study.json").write_text(json.dumps(
        {"study": "marked_models", "preset": "tiny", "seed": 0, "git_revision": "0" * 40}))


# tiny inputs of study reports that define no example(folder) of their own
_STUDY_FIXTURES = {"rankiqa": _rankiqa_tables, "explainers": _explainers_tables,
                   "quality_vs_accuracy": _quality_vs_accuracy_tables,
                   "marked_models": _marked_models_tables}


def _summary(page: Path) -> str:
    return re.search(r"<p class='summary' id='summary'>(.*?)</p>", page.read_text(), re.S)[1]


# --------------------------------------------------------------------------- pages to open


def _study_names() -> list[str]:
    return study_modules()


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Path]:
    """A results folder like the real one: a scoring store, a leaderboard, a run of every
    study whose report module can write an example, and the landing page over them."""
    import importlib

    root = tmp_path_factory.mktemp("results")
    _write_synthetic_store(root / "demo", good="toy:good", bad="toy:bad")
    _write_tiny_real_board(root / "leaderboard")
    pages = {"scoring": root / "demo", "leaderboard": root / "leaderboard"}
    errors: dict = {}  # a page that fails to build fails its own test below, not the module
    for study in _study_names():
        folder = root / study / "tiny"
        try:
            module = importlib.import_module(f"qbench.report.{study}")
            writer = getattr(module, "example", None) or _STUDY_FIXTURES.get(study)
            if callable(writer):
                folder.mkdir(parents=True)
                writer(folder)
                pages[study] = folder
        except Exception as exc:
            pages[study] = folder
            errors[folder] = f"{type(exc).__name__}: {exc}"
    built = build_all(root)
    errors.update({e.found.folder: e.error for e in built.failed})
    out = {name: errors.get(folder) or folder / "report.html" for name, folder in pages.items()}
    out["index"] = built.index
    return out


def _find_browser() -> tuple[str | None, str | None]:
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                   if shutil.which(n)), None)
    return chrome, shutil.which("chromedriver")


@pytest.fixture(scope="module")
def driver():
    chrome, chromedriver = _find_browser()
    if not (chrome and chromedriver):
        reason = (f"BROWSER TESTS SKIPPED: chromium={chrome} chromedriver={chromedriver}; "
                  "install with `apt-get install -y chromium chromium-driver` (make test does "
                  "this when run as root)")
        print(f"\n*** {reason} ***")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    drv.set_page_load_timeout(120)
    yield drv
    drv.quit()


def _open(drv, page: Path, wait: float = 60) -> dict:
    """Load ``page``, wait (up to ``wait`` s) for every figure to draw; returns what the page
    shows: figure containers, those drawn, the summary text, remote requests, the console."""
    drv.get_log("browser")  # drop what earlier pages logged
    drv.get(page.resolve().as_uri())
    deadline = time.monotonic() + wait
    state = {}
    while time.monotonic() < deadline:
        state = drv.execute_script("""
            const figs = Array.from(document.querySelectorAll('.plotly-graph-div'));
            return {figures: figs.length,
                    drawn: figs.filter(f => f.classList.contains('js-plotly-plot')
                        && f.querySelector('.main-svg, canvas')).length,
                    summary: (document.getElementById('summary') || {}).textContent || '',
                    ready: document.readyState,
                    remote: performance.getEntriesByType('resource').map(r => r.name)
                        .filter(n => /^https?:/.test(n))};""")
        if state["ready"] == "complete" and state["drawn"] == state["figures"]:
            break
        time.sleep(0.2)
    state["log"] = drv.get_log("browser")
    return state


def _screenshot(drv, page: Path, name: str, tmp_path: Path) -> Path:
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(1200, min(max(900, height), 6000))
    target = tmp_path / f"report-{name}.png"
    drv.save_screenshot(str(target))
    drv.set_window_size(1200, 900)
    if os.environ.get("QBENCH_SCREENSHOT_DIR"):
        keep = Path(os.environ["QBENCH_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(target, keep / target.name)
    return target


@pytest.mark.parametrize("name", ["scoring", "leaderboard", "index", *_study_names()])
def test_report_opens_in_chromium_with_every_figure_drawn_and_no_errors(name, results, driver,
                                                                       tmp_path):
    if name not in results:
        pytest.skip(f"qbench.report.{name} defines no example(folder) and this file has no "
                    "tiny fixture for it")
    page = results[name]
    assert isinstance(page, Path), f"the {name} report did not build: {page}"
    state = _open(driver, page)
    errors = [e for e in state["log"] if e.get("level") == "SEVERE"]
    assert not errors, errors
    assert state["figures"] == state["drawn"], f"{state['drawn']} of {state['figures']} drawn"
    if name != "index":
        assert state["figures"] >= 1
    assert not state["remote"], f"the page fetched from the network: {state['remote']}"
    assert re.search(r"\d", state["summary"]), "the page opens on a summary with numbers"
    shot = _screenshot(driver, page, name, tmp_path)
    assert shot.stat().st_size > 10_000


def test_the_browser_checks_catch_errors_undrawn_figures_and_network_use(driver, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p id='summary'>1 of 2</p><div class='plotly-graph-div'></div>"
                    "<img src='http://127.0.0.1:9/x.png'>"
                    "<script>throw new Error('boom')</script></body></html>")
    state = _open(driver, page, wait=3)
    assert any("boom" in e["message"] and e["level"] == "SEVERE" for e in state["log"])
    assert state["figures"] == 1 and state["drawn"] == 0
    assert state["remote"] == ["http://127.0.0.1:9/x.png"]


def test_leaderboard_table_sorts_when_a_header_is_clicked(results, driver):
    from selenium.webdriver.common.by import By

    _open(driver, results["leaderboard"])
    table = driver.find_element(By.ID, "board-refs-kadid")
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    names = [h.text for h in headers]
    col = next(i for i, h in enumerate(names) if h.startswith("severity-rank consistency"))

    def column() -> list[float]:
        return [float(r.find_elements(By.TAG_NAME, "td")[col].get_attribute("data-v"))
                for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

    headers[col].click()
    first = column()
    headers[col].click()
    second = column()
    assert first == sorted(first) and second == sorted(second, reverse=True)
    assert first != second, "two metrics with different values"


def test_index_links_every_report_and_each_link_resolves(results):
    html = results["index"].read_text()
    links = set(re.findall(r"href='([^']+)'", html))
    want = {p for n, p in results.items() if n != "index" and isinstance(p, Path)}
    got = {(results["index"].parent / h).resolve() for h in links}
    assert {p.resolve() for p in want} <= got
    assert all(p.exists() for p in got)


@pytest.mark.parametrize("name", ["scoring", "leaderboard", "index", *_study_names()])
def test_pages_are_offline_with_plotly_embedded_at_most_once(results, name):
    if name not in results:
        pytest.skip(f"no tiny run of {name}")
    assert isinstance(results[name], Path), f"the {name} report did not build: {results[name]}"
    html = results[name].read_text()
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?:", html, re.I)
    assert len(re.findall(r"plotly\.js v\d", html)) == (0 if name == "index" else 1)


# --------------------------------------------------------------------------- summaries


def test_scoring_summary_follows_the_numbers(tmp_path):
    _write_synthetic_store(tmp_path / "a", good="toy:alpha", bad="toy:beta")
    _write_synthetic_store(tmp_path / "b", good="toy:beta", bad="toy:alpha")
    a, b = _summary(build_report(tmp_path / "a")), _summary(build_report(tmp_path / "b"))
    assert a != b
    assert re.search(r"toy:alpha follows the severity order most consistently", a)
    assert re.search(r"toy:beta follows the severity order most consistently", b)


def test_leaderboard_summary_follows_the_numbers(tmp_path):
    _write_synthetic_board(tmp_path / "a", good="m:alpha", bad="m:beta")
    _write_synthetic_board(tmp_path / "b", good="m:beta", bad="m:alpha")
    from qbench.report import leaderboard

    a = _summary(leaderboard.build(tmp_path / "a", n_boot=50))
    b = _summary(leaderboard.build(tmp_path / "b", n_boot=50))
    assert "m:alpha ranks first with severity-rank consistency 1.000" in a
    assert "m:beta ranks first with severity-rank consistency 1.000" in b
    assert "m:beta: interval wholly below zero" in a and "m:alpha: interval" in b


def test_landing_page_summary_counts_reports_and_failures(tmp_path):
    _write_synthetic_store(tmp_path / "demo", good="toy:good", bad="toy:bad")
    one = _summary(build_all(tmp_path).index)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "study.json").write_text(json.dumps({"study": "no_such_study"}))
    two = _summary(build_all(tmp_path).index)
    assert one.startswith("1 of 1 report(s)") and two.startswith("1 of 2 report(s)")
    assert "1 could not be rebuilt" in two and "no_such_study" in two


# --------------------------------------------------------------------------- dispatch


def test_report_dispatches_on_what_the_folder_holds(tmp_path):
    _write_synthetic_store(tmp_path / "demo", good="toy:good", bad="toy:bad")
    _write_synthetic_board(tmp_path / "board", good="m:a", bad="m:b")
    assert detect(tmp_path / "demo").kind == "scoring"
    assert detect(tmp_path / "board").kind == "leaderboard"
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "board")])
    assert res.exit_code == 0, res.output
    assert "qbench leaderboard" in (tmp_path / "board" / "report.html").read_text()


def test_unknown_or_malformed_study_gives_a_clear_error(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps({"study": "no_such_study", "preset": "q"}))
    with pytest.raises(QbenchError, match=r"no report module qbench/report/no_such_study\.py"):
        build_report(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"study": "figures"}))
    with pytest.raises(QbenchError, match="has no report module"):
        build_report(tmp_path)
    (tmp_path / "study.json").write_text("{not json")
    with pytest.raises(QbenchError, match="not valid JSON"):
        build_report(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"preset": "q"}))
    with pytest.raises(QbenchError, match='no "study" name'):
        build_report(tmp_path)


def test_study_report_is_built_by_its_module(tmp_path, monkeypatch):
    import sys
    import types

    module = types.ModuleType("qbench.report.toy_study")

    def build(folder):
        preset = json.loads((Path(folder) / "study.json").read_text())["preset"]
        out = Path(folder) / "report.html"
        out.write_text(f"<p class='summary' id='summary'>toy {preset} done.</p>")
        return out

    module.build = build
    monkeypatch.setitem(sys.modules, "qbench.report.toy_study", module)
    run = tmp_path / "toy_study" / "quick"
    run.mkdir(parents=True)
    (run / "study.json").write_text(json.dumps({"study": "toy_study", "preset": "quick",
                                                "timestamp": "2026-01-02T00:00:00Z"}))
    older = tmp_path / "toy_study" / "full"
    older.mkdir()
    (older / "study.json").write_text(json.dumps({"study": "toy_study", "preset": "full",
                                                  "timestamp": "2025-01-02T00:00:00Z"}))
    res = CliRunner().invoke(cli, ["report", "--all", str(tmp_path)])
    assert res.exit_code == 0, res.output
    index = (tmp_path / "index.html").read_text()
    latest = index[index.index("id='latest'"):index.index("id='all'")]
    assert "toy quick done." in latest and "toy full done." not in latest
    assert "2026-01-02" in latest and "toy full done." in index


def test_cli_all_reports_a_failure_and_still_builds_the_rest(tmp_path):
    _write_synthetic_store(tmp_path / "demo", good="toy:good", bad="toy:bad")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "study.json").write_text(json.dumps({"study": "no_such_study"}))
    res = CliRunner().invoke(cli, ["report", "--all", str(tmp_path)], standalone_mode=False)
    assert isinstance(res.exception, QbenchError) and "1 of 2" in str(res.exception)
    assert (tmp_path / "demo" / "report.html").exists() and (tmp_path / "index.html").exists()
