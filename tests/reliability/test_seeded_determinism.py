"""Two runs with the same seed give bit-identical CPU results (in another process, after the
global random generators were disturbed); another seed gives other values."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

import qbench.data as data
from qbench.engine import grid, score
from qbench.metrics import create
from qbench.store import Store
from tests.toy_metrics import MeanAbsError, MeanBrightness

ROOT = Path(__file__).resolve().parents[2]
NOISY = ["gaussian_noise", "impulse_noise", "spatter", "kadid:jitter"]


def seeded_job(store_dir, seed: int) -> None:
    ds = data.load("scenes", split="test", size=24, n_train=10, n_val=10, n_test=8, seed=seed)
    store = Store(store_dir)
    run = store.begin_run({"job": "determinism", "seed": seed})
    score(store, run, ds, grid(NOISY, [4]),
          [MeanBrightness(), MeanAbsError(), create("sharpness"), create("colorfulness")],
          seed=seed, batch_size=5, progress=False)


CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {here!r})
    from test_seeded_determinism import seeded_job
    seeded_job(sys.argv[1], int(sys.argv[2]))
""")


def _bits(store: Store) -> np.ndarray:
    rows = store.rows().drop(columns="run")
    return rows.value.to_numpy(np.float64).view(np.int64), rows.drop(columns="value")


def test_the_same_seed_gives_the_same_bits_and_another_seed_other_values(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QBENCH_KILL_AT"}
    child = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT),
                                                               here=str(Path(__file__).parent)),
                            str(tmp_path / "a"), "7"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == 0, child.stderr
    torch.manual_seed(12345)  # disturb every global generator: the run must not use them
    torch.rand(100)
    np.random.seed(999)
    np.random.rand(10)
    seeded_job(tmp_path / "b", 7)
    seeded_job(tmp_path / "c", 8)
    bits_a, keys_a = _bits(Store(tmp_path / "a"))
    bits_b, keys_b = _bits(Store(tmp_path / "b"))
    # three NR metrics on clean + every corruption, the FR one on the corruptions only
    assert len(bits_a) == 8 * (1 + len(NOISY)) * 3 + 8 * len(NOISY)
    assert Store(tmp_path / "a").failures().empty
    assert keys_a.equals(keys_b)
    assert np.array_equal(bits_a, bits_b)  # bit for bit
    values_c = Store(tmp_path / "c").rows().value.to_numpy()
    noisy = (keys_a.corruption != "clean").to_numpy()
    assert not np.array_equal(bits_a[noisy], values_c[noisy].view(np.int64))
