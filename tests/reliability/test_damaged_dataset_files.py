"""Every score/metadata file of every real-dataset loader, damaged in six ways (empty, random
bytes, UTF-16, truncated at 10/50/80 %): loading either works (a truncation can land on a line
end) or raises a one-line QbenchError -- never a stray UnicodeDecodeError, TypeError or
IndexError from deep inside a parser."""

import shutil

import numpy as np
import pytest

import qbench.data as data
from qbench.errors import QbenchError
from tests.dataset_fixtures import WRITERS

FILES = {"kadid10k": ["kadid10k/dmos.csv"],
         "tid2013": ["mos_with_names.txt", "mos_std.txt"],
         "live": ["dmos.mat", "refnames_all.mat"],
         "koniq10k": ["koniq10k_scores_and_distributions.csv"],
         "csiq": ["csiq.DMOS.xlsx"],
         "cifar10": ["cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta"]}
DAMAGE = {
    "empty": lambda b: b"",
    "random-bytes": lambda b: np.random.default_rng(0).integers(0, 256, 300, np.uint8).tobytes(),
    "utf16": lambda b: b.decode("latin-1").encode("utf-16"),
    "truncated-10": lambda b: b[: len(b) // 10],
    "truncated-50": lambda b: b[: len(b) // 2],
    "truncated-80": lambda b: b[: len(b) * 4 // 5],
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pristine")
    return {name: WRITERS[name](tmp / name) for name in FILES}


@pytest.mark.parametrize("name, relpath", [(n, f) for n, fs in FILES.items() for f in fs])
def test_a_damaged_dataset_file_loads_or_gives_one_clear_line(pristine, tmp_path, name, relpath):
    for how, damage in DAMAGE.items():
        root = tmp_path / how
        shutil.copytree(pristine[name], root)
        target = root / relpath
        target.write_bytes(damage(target.read_bytes()))
        try:
            ds = data.load(name, root=root)
            assert len(ds) > 0, how
        except QbenchError as exc:
            assert "\n" not in str(exc) and name in str(exc), (how, str(exc))
