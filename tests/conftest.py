"""Shared test set-up: a private QBENCH_HOME per test session, offline hub, small datasets."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session", autouse=True)
def qbench_home(tmp_path_factory):
    """Every test writes its caches under one temporary QBENCH_HOME (shared for speed)."""
    home = tmp_path_factory.mktemp("qbench_home")
    old = os.environ.get("QBENCH_HOME")
    os.environ["QBENCH_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("QBENCH_HOME", None)
    else:
        os.environ["QBENCH_HOME"] = old


SMALL = {"n_train": 40, "n_val": 10, "n_test": 20}


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module: training and explainer loops on a busy 2-core
    machine are faster without thread contention (use with ``pytest.mark.usefixtures``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
