import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

import qbench.data as data
from qbench.engine import grid, score
from qbench.store import Store
from tests.conftest import SMALL
from tests.toy_metrics import FailsOnDarkImages, MeanAbsError, MeanBrightness, NeedsBigInputs

ROOT = Path(__file__).resolve().parents[1]


def _scenes(n=12):
    return data.load("scenes", split="test", size=32, **SMALL).subset(range(n))


def test_every_key_gets_exactly_one_row_and_fr_metrics_skip_the_clean_condition(tmp_path):
    store = Store(tmp_path)
    run = store.begin_run({"t": 1})
    conds = grid(["gaussian_noise", "contrast"], [1, 3])
    s = score(store, run, _scenes(), conds, [MeanBrightness(), MeanAbsError()], batch_size=5,
              progress=False)
    rows = store.rows(run)
    assert s.written == len(rows) == 12 * 5 + 12 * 4
    assert not rows.duplicated(["item", "corruption", "severity", "scorer"]).any()
    assert not ((rows.scorer == "toy:mae") & (rows.corruption == "clean")).any()


def test_a_rerun_reuses_finished_rows_without_calling_the_metric(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("TOY_LOG", str(log))
    store = Store(tmp_path / "store")
    run = store.begin_run({"t": 2})
    conds = grid(["gaussian_blur"], [2])
    score(store, run, _scenes(), conds, [MeanBrightness()], progress=False)
    first = store.rows(run)
    log.unlink()
    s = score(Store(tmp_path / "store"), run, _scenes(), conds, [MeanBrightness()],
              progress=False)
    assert not log.exists() and s.written == 0 and s.reused == 24
    pd.testing.assert_frame_equal(first, store.rows(run))


def test_failures_are_recorded_per_item_and_the_run_goes_on(tmp_path):
    ds = data.load("scenes", split="test", size=32, **SMALL)
    brightness = ds.batch(range(len(ds))).mean(dim=(1, 2, 3))
    store = Store(tmp_path)
    run = store.begin_run({"t": 3})
    score(store, run, ds, grid([], clean=True), [FailsOnDarkImages(), NeedsBigInputs()],
          progress=False)
    rows, fails = store.rows(run), store.failures(run)
    dark = int((brightness < 0.3).sum())
    nan = int((brightness > 0.6).sum())
    assert dark + nan > 0, "fixture should contain dark or bright images"
    fragile = fails[fails.scorer == "toy:fragile"]
    assert (fragile.reason.str.contains("too dark")).sum() == dark
    assert (fragile.reason.str.contains("non-finite")).sum() == nan
    assert (rows.scorer == "toy:fragile").sum() == len(ds) - dark - nan
    big = fails[fails.scorer == "toy:big"]
    assert len(big) == len(ds) and big.reason.str.contains("at least 161 px").all()


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import qbench.data as data
    from qbench.engine import grid, score
    from qbench.store import Store
    from tests.toy_metrics import MeanBrightness
    ds = data.load("scenes", split="test", size=32, n_train=40, n_val=10, n_test=20)
    store = Store(sys.argv[1])
    run = store.begin_run({{"job": "kill"}})
    score(store, run, ds, grid(["gaussian_noise", "shot_noise"], [1, 2, 3]),
          [MeanBrightness(delay=float(sys.argv[2]))], batch_size=4, progress=False)
    store.end_run(run)
""")


def _run(store_dir, delay, env):
    return subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT)),
                             str(store_dir), str(delay)], env=env)


def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "TOY_LOG": str(tmp_path / "calls.log")}
    assert _run(tmp_path / "clean", 0, env).wait(120) == 0
    expected = Store(tmp_path / "clean").rows()
    (tmp_path / "calls.log").unlink()

    proc = _run(tmp_path / "killed", 0.15, env)
    deadline = time.time() + 60
    while time.time() < deadline:
        parts = list((tmp_path / "killed" / "rows").glob("*.parquet"))
        if len(parts) >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = Store(tmp_path / "killed").rows()
    assert 0 < len(partial) < len(expected), "the kill must land mid-run"
    scored_before = sum(int(x) for x in (tmp_path / "calls.log").read_text().split())
    assert _run(tmp_path / "killed", 0, env).wait(120) == 0
    scored_total = sum(int(x) for x in (tmp_path / "calls.log").read_text().split())
    resumed = Store(tmp_path / "killed").rows()
    pd.testing.assert_frame_equal(resumed, expected)
    # the resumed run scored only what the killed run had not finished
    # (+1: the engine scores one image a second time to check the metric is deterministic)
    assert scored_total - scored_before == len(expected) - len(partial) + 1
