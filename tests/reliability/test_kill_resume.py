"""kill -9 at six different points of a scoring run, then resume: the final store equals an
uninterrupted run's, nothing is lost or duplicated, and finished keys are not recomputed.

The child process kills itself with a real SIGKILL at a chosen point (``QBENCH_KILL_AT``, see
``qbench/faults.py``): after a part file, during a part write, during a manifest write, after a
metric call in the middle of a batch, between a batch's rows and failures parts, and during
the final manifest write.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from qbench.store import Store
from tests.reliability.files import kill_resume_job, mixed_folder

ROOT = Path(__file__).resolve().parents[2]
CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests.reliability.files import kill_resume_job
    kill_resume_job(sys.argv[1], sys.argv[2])
""")
KILL_POINTS = [("manifest-write", 1), ("part", 4), ("part-write", 8), ("metric-call", 7),
               ("between-parts", 5), ("manifest-write", 3)]


def _start(store_dir, images, log, kill_at=None):
    env = {**os.environ, "TOY_LOG": str(log), "QBENCH_METRIC_TIMEOUT": "60"}
    env.pop("QBENCH_KILL_AT", None)
    if kill_at:
        env["QBENCH_KILL_AT"] = f"{kill_at[0]}:{kill_at[1]}"
    return subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(store_dir),
                             str(images)], env=env, stderr=subprocess.PIPE, text=True)


def _images_scored(log: Path) -> int:
    return sum(int(x) for x in log.read_text().split()) if log.exists() else 0


def _duplicated_keys(store: Store, view: str) -> int:
    return int(store.query(f"SELECT count(*) AS n FROM (SELECT run, dataset, item, corruption, "
                           f"severity, seed, scorer FROM {view} GROUP BY ALL "
                           "HAVING count(*) > 1)").n[0])


def _in_process(store_dir, images, log, monkeypatch):
    """Run the job here (no second interpreter start-up): the resume and the reference run."""
    with monkeypatch.context() as m:
        m.setenv("TOY_LOG", str(log))
        m.delenv("QBENCH_KILL_AT", raising=False)
        kill_resume_job(store_dir, images)
    return _images_scored(log)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every kill point's store after the kill (a child process) and after the resume (in this
    process), and an uninterrupted run's store."""
    tmp = tmp_path_factory.mktemp("kill")
    images = tmp / "images"
    mixed_folder(images)
    killed = {k: _start(tmp / f"{k[0]}-{k[1]}", images, tmp / f"{k[0]}-{k[1]}.kill.log", k)
              for k in KILL_POINTS}
    out = {}
    for k, proc in killed.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, f"{k} was not killed: rc {proc.returncode}\n{err}"
        out[k] = {"after_kill": Store(tmp / f"{k[0]}-{k[1]}").rows(),
                  "dir": tmp / f"{k[0]}-{k[1]}"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in out.items():
            v["resume_scored"] = _in_process(v["dir"], images,
                                             tmp / f"{k[0]}-{k[1]}.resume.log", mp)
        _in_process(tmp / "uninterrupted", images, tmp / "ref.log", mp)
    return Store(tmp / "uninterrupted"), out


@pytest.mark.parametrize("point", KILL_POINTS, ids=[f"{p}:{k}" for p, k in KILL_POINTS])
def test_a_run_killed_then_resumed_equals_an_uninterrupted_run(outcomes, point):
    reference, out = outcomes
    store = Store(out[point]["dir"])
    pd.testing.assert_frame_equal(store.rows(), reference.rows())
    pd.testing.assert_frame_equal(store.failures(), reference.failures())
    pd.testing.assert_frame_equal(store.notes(), reference.notes())
    assert len(reference.rows()) > 0 and len(reference.failures()) > 0
    assert len(reference.notes()) > 0  # the grayscale files were noted
    # nothing duplicated: no key was written twice, as a value or as a failure
    assert _duplicated_keys(store, "rows") == 0
    assert _duplicated_keys(store, "failures_log") == 0


@pytest.mark.parametrize("point", KILL_POINTS, ids=[f"{p}:{k}" for p, k in KILL_POINTS])
def test_the_resume_scores_only_what_the_killed_attempt_had_not_finished(outcomes, point):
    reference, out = outcomes
    before = out[point]["after_kill"]
    expected = reference.rows()
    missing = (expected.scorer == "toy:mean").sum() - (before.scorer == "toy:mean").sum()
    # +1: the engine scores one image twice to check that the metric is deterministic
    assert out[point]["resume_scored"] == missing + (1 if missing else 0)


def test_the_kill_points_land_at_different_stages_of_the_run(outcomes):
    _, out = outcomes
    found = {k: len(v["after_kill"]) for k, v in out.items()}
    total = len(outcomes[0].rows())
    assert found[("manifest-write", 1)] == 0  # killed before anything was scored
    assert found[("manifest-write", 3)] == total  # killed after everything was scored
    assert 0 < found[("part", 4)] < total and 0 < found[("between-parts", 5)] < total
    assert len(set(found.values())) >= 4


def test_an_attempt_killed_is_marked_interrupted_and_the_resume_finished(outcomes):
    _, out = outcomes
    for k, v in out.items():
        manifest = json.loads(next((v["dir"] / "manifests").glob("*.json")).read_text())
        statuses = [a["status"] for a in manifest["attempts"]]
        assert statuses[-1] == "finished", k
        if k != ("manifest-write", 1):  # that kill left no manifest to mark
            assert statuses[:-1] == ["interrupted"], (k, statuses)


def test_a_part_killed_while_being_written_leaves_only_an_ignored_temporary(outcomes):
    _, out = outcomes
    folder = out[("part-write", 8)]["dir"]
    leftovers = [p for sub in ("rows", "failures", "notes") for p in (folder / sub).iterdir()
                 if p.suffix != ".parquet"]
    assert leftovers and all(p.name.startswith(".") and p.suffix == ".tmp" for p in leftovers)
