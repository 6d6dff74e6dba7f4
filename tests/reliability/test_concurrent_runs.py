"""Two runs on one store at the same time: the same run twice and a different run alongside.
Neither corrupts the store: every run's rows equal those of the run alone, no key is written
twice, and every attempt is in the manifest."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from qbench.store import Store, run_id
from tests.reliability.files import concurrent_job, mixed_folder

ROOT = Path(__file__).resolve().parents[2]
CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests.reliability.files import concurrent_job
    concurrent_job(sys.argv[1], sys.argv[2], sys.argv[3], 0.3, sys.argv[4])
""")


@pytest.fixture(scope="module")
def together(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("concurrent")
    images, go, shared = tmp / "images", tmp / "go", tmp / "shared"
    mixed_folder(images)
    env = {**os.environ, "TOY_LOG": str(tmp / "calls.log")}
    env.pop("QBENCH_KILL_AT", None)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(shared),
                               str(images), job, str(go)], env=env, stderr=subprocess.PIPE,
                              text=True)
             for job in ("same", "same", "other")]
    go.touch()  # the children wait for this file: they start scoring together
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        errs.append(err)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOY_LOG", str(tmp / "alone.log"))
        for job in ("same", "other"):
            concurrent_job(tmp / f"alone-{job}", images, job, 0.0)
    return Store(shared), {job: Store(tmp / f"alone-{job}") for job in ("same", "other")}, \
        errs, tmp


@pytest.mark.parametrize("job", ["same", "other"])
def test_each_run_in_a_shared_store_equals_the_run_alone(together, job):
    shared, alone, _, _ = together
    rid = run_id({"job": job})
    pd.testing.assert_frame_equal(shared.rows(rid), alone[job].rows(rid))
    pd.testing.assert_frame_equal(shared.failures(rid), alone[job].failures(rid))
    pd.testing.assert_frame_equal(shared.notes(rid), alone[job].notes(rid))


def test_the_same_run_twice_at_once_computes_each_key_once(together):
    shared, alone, errs, tmp = together
    for view in ("rows", "failures_log"):
        dup = shared.query(f"SELECT count(*) AS n FROM (SELECT run, dataset, item, corruption, "
                           f"severity, seed, scorer FROM {view} GROUP BY ALL HAVING count(*) > 1)")
        assert dup.n[0] == 0, view
    # one of the two waited for the other, then found everything finished
    assert sum("being written by another process" in e for e in errs) >= 1, errs
    scored = sum(int(x) for x in (tmp / "calls.log").read_text().split())
    rid = run_id({"job": "same"})
    keys = int((alone["same"].rows(rid).scorer == "toy:mean").sum())
    other = int((alone["other"].rows(run_id({"job": "other"})).scorer == "toy:mean").sum())
    assert scored == keys + other + 2  # + one determinism re-check per run that scored


def test_every_attempt_is_in_the_manifest_and_finished(together):
    shared, *_ = together
    for job, attempts in (("same", 2), ("other", 1)):
        m = json.loads((shared.root / "manifests" / f"{run_id({'job': job})}.json").read_text())
        assert [a["status"] for a in m["attempts"]] == ["finished"] * attempts
        assert len({a["pid"] for a in m["attempts"]}) == attempts
