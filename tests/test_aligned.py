"""Task-aligned metrics: TG-IQA training determinism and the metric protocol."""

from __future__ import annotations

import pytest
import torch

import qbench.metrics as metrics
import qbench.models as models
from qbench.metrics.aligned import (
    PROXY,
    TGIQA_CHECKPOINT,
    ProxyConfidence,
    TrainConfig,
    train_tgiqa,
)
from qbench.models.checkpoint import CheckpointError, sha256_file, user_dir
from qbench.models.registry import build

SMALL = {"n_train": 40, "n_val": 10, "n_test": 20}


def _tiny_config(name: str = TGIQA_CHECKPOINT, seed: int = 0) -> TrainConfig:
    return TrainConfig(name=name, n_train=12, n_val=8, draws=1, epochs=1, batch_size=6,
                       seed=seed, widths=(4, 8, 8, 8),
                       corruptions=["gaussian_noise", "contrast"], data_options=SMALL)


@pytest.fixture(scope="module")
def zoo():
    """A seeded, untrained proxy saved as PROXY in the test session's QBENCH_HOME zoo (it
    shadows any shipped checkpoint of that name), and a tiny TG-IQA trained against it."""
    torch.manual_seed(0)
    proxy = build("proxy-cnn", widths=(4, 8, 8))
    models.save(proxy, models.Provenance(name=PROXY, arch="proxy-cnn",
                                         arch_kwargs={"widths": [4, 8, 8]}, command="test",
                                         seed=0, data_fingerprint="test",
                                         extra={"dataset": "scenes", "splits": ["train"]}))
    path = train_tgiqa(_tiny_config(), progress=False, command="test")
    assert path.parent == user_dir()
    return path


def test_tgiqa_training_is_deterministic(zoo, tmp_path):
    a = train_tgiqa(_tiny_config(), out=tmp_path / "a", progress=False)
    b = train_tgiqa(_tiny_config(), out=tmp_path / "b", progress=False)
    assert sha256_file(a) == sha256_file(b) == sha256_file(zoo)
    c = train_tgiqa(_tiny_config(seed=1), out=tmp_path / "c", progress=False)
    assert sha256_file(c) != sha256_file(a)


def test_tgiqa_provenance_records_proxy_target_and_splits(zoo):
    prov = models.verify_hash(zoo)
    assert prov.arch == "tgiqa-cnn"
    assert prov.extra["proxy"] == PROXY and len(prov.extra["proxy_sha256"]) == 64
    assert prov.extra["splits"] == ["train", "val"]  # never the test split
    assert "p_true" in prov.extra["target"]
    assert set(prov.metrics) >= {"val_bce", "val_spearman_p_true", "val_auroc_proxy_correct"}


@pytest.mark.parametrize("name", ["tg-iqa", "proxy-confidence"])
def test_aligned_metrics_follow_the_protocol(zoo, name):
    m = metrics.create(name)
    assert m.info.name == name and m.info.kind == "NR" and m.info.higher_is_better is True
    assert m.info.trained_on and all(t.startswith("scenes/") for t in m.info.trained_on)
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    s = m(x)
    assert s.shape == (5,) and s.dtype == torch.float64
    assert torch.all((s >= 0) & (s <= 1))
    assert torch.equal(s, m(x))  # deterministic
    assert torch.allclose(m(x[:2]), s[:2])  # batch-independent
    with pytest.raises(ValueError):
        m(x[:, :1])


def test_proxy_confidence_is_max_softmax_of_the_proxy(zoo):
    m = ProxyConfidence()
    proxy, _ = models.load(PROXY)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = proxy(x).softmax(1).amax(1).double()
    assert torch.allclose(m(x), expected)
    assert torch.all(m(x) >= 1 / 10 - 1e-9)


def test_missing_checkpoint_names_the_fix():
    with pytest.raises(CheckpointError, match="no-such-proxy"):
        ProxyConfidence(checkpoint="no-such-proxy")


def test_missing_tgiqa_checkpoint_points_to_the_aligned_command():
    from qbench.metrics.aligned import TGIQA

    with pytest.raises(CheckpointError, match="qbench aligned train"):
        TGIQA(checkpoint="no-such-tgiqa")
