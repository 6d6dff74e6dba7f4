"""The Ray engine writes exactly the local engine's rows and survives a killed worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import qbench.data as data
from qbench.engine import grid, score
from qbench.metrics import create
from qbench.store import Store
from tests.toy_metrics import FailsOnDarkImages, MeanAbsError, MeanBrightness

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=150 * 2**20,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"],
                                       "QBENCH_HOME": os.environ.get("QBENCH_HOME", ""),
                                       "HF_HUB_OFFLINE": "1"}})
    yield ray
    ray.shutdown()


def _dataset():
    return data.load("scenes", split="test", size=32, n_train=40, n_val=10, n_test=12)


def _tables(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = store.rows().drop(columns="run").reset_index(drop=True)
    fails = store.failures().drop(columns="run")
    return rows, fails.sort_values(list(fails.columns)).reset_index(drop=True)


def test_ray_engine_writes_the_local_engines_rows_and_failures(ray_local, tmp_path):
    ds = _dataset()
    metrics = [MeanBrightness(), MeanAbsError(), FailsOnDarkImages(), create("pyiqa:psnr")]
    conditions = grid(["gaussian_noise", "defocus_blur"], [1, 4])
    local, remote = Store(tmp_path / "local"), Store(tmp_path / "ray")
    score(local, local.begin_run({"t": 1}), ds, conditions, metrics, batch_size=4,
          progress=False)
    summary = score(remote, remote.begin_run({"t": 1}), ds, conditions, metrics, batch_size=4,
                    progress=False, engine="ray", workers=2)
    rows_l, fails_l = _tables(local)
    rows_r, fails_r = _tables(remote)
    assert len(rows_l) > 0 and len(fails_l) > 0, "the fixture must produce values and failures"
    pd.testing.assert_frame_equal(rows_r, rows_l)
    pd.testing.assert_frame_equal(fails_r, fails_l)
    assert summary.written == len(rows_r)
    # a second Ray run of the same run id finds everything finished
    again = score(remote, remote.begin_run({"t": 1}), ds, conditions, metrics, batch_size=4,
                  progress=False, engine="ray", workers=2)
    assert again.written == 0 and again.reused > 0


def test_a_killed_ray_worker_loses_nothing_after_resume(ray_local, tmp_path, monkeypatch):
    ds = _dataset()
    conditions = grid(["gaussian_noise", "shot_noise"], [1, 2, 3])
    expected = Store(tmp_path / "expected")
    score(expected, expected.begin_run({"k": 1}), ds, conditions, [MeanBrightness()],
          batch_size=2, progress=False)

    pids = tmp_path / "pids"
    monkeypatch.setenv("QBENCH_RAY_PIDS", str(pids))
    store = Store(tmp_path / "ray")
    killed: list[int] = []

    def kill_one_worker_mid_run() -> None:
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            parts = list((tmp_path / "ray" / "rows").glob("*.parquet"))
            if pids.exists() and len(parts) >= 3:
                pid = int(pids.read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_one_worker_mid_run, daemon=True)
    watcher.start()
    run = store.begin_run({"k": 1})
    first_run_error = None  # Ray Data normally restarts the actor and retries the unit
    try:
        score(store, run, ds, conditions, [MeanBrightness(delay=0.3)], batch_size=2,
              progress=False, engine="ray", workers=2)
    except Exception as exc:  # if it gives up instead, resuming must complete the run
        first_run_error = exc
    watcher.join()
    assert killed, "the test must kill a worker mid-run"
    assert len(store.rows()) > 0
    print("first run after the kill:", "failed" if first_run_error else "completed")
    score(store, store.begin_run({"k": 1}), ds, conditions, [MeanBrightness()], batch_size=2,
          progress=False, engine="ray", workers=2)
    rows, _ = _tables(store)
    want, _ = _tables(expected)
    pd.testing.assert_frame_equal(rows, want)  # nothing lost, nothing duplicated
