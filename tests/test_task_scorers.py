import numpy as np
import pytest
import torch
import torch.nn.functional as F

import qbench.data as data
from qbench.data.base import ImageSet
from qbench.engine import grid, score
from qbench.errors import QbenchError
from qbench.metrics.registry import validate
from qbench.metrics.task import TaskModel, TaskScorer, create, scorers_for
from qbench.models.train import build_seeded
from qbench.store import Store
from tests.conftest import SMALL


@pytest.fixture(scope="module")
def scenes():
    return data.load("scenes", split="test", size=32, **SMALL)


@pytest.fixture
def model():
    return build_seeded("proxy-cnn", 0).eval()


def test_three_scorers_named_after_the_model_with_kind_task_and_directions(model):
    s = scorers_for("m0", model=model)
    assert [x.info.name for x in s] == ["task:m0:correct", "task:m0:loss", "task:m0:confidence"]
    assert all(x.info.kind == "task" and x.info.needs_labels for x in s)
    assert [x.info.higher_is_better for x in s] == [True, False, True]
    for x in s:
        validate(x, x.info.name)  # follows the metric protocol


def test_values_equal_argmax_cross_entropy_and_max_softmax(model, scenes):
    x = scenes.batch(range(8))
    y = torch.as_tensor(scenes.labels[:8])
    correct, loss, conf = scorers_for("m0", model=model)
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(correct(x, labels=y), (logits.argmax(1) == y).double())
    assert set(correct(x, labels=y).tolist()) <= {0.0, 1.0}
    assert torch.allclose(loss(x, labels=y), F.cross_entropy(logits, y, reduction="none").double(),
                          atol=1e-6)
    assert torch.allclose(conf(x, labels=y), logits.softmax(1).max(1).values.double(),
                          atol=1e-6)


def test_one_forward_serves_all_three_scorers_of_a_batch_and_a_new_batch_recomputes(model,
                                                                                    scenes):
    task = TaskModel("m0", model)
    scorers = [TaskScorer(task, o) for o in ("correct", "loss", "confidence")]
    x = scenes.batch(range(6))
    y = torch.as_tensor(scenes.labels[:6])
    sel = torch.arange(6)
    for s in scorers:
        s(x[sel], labels=y)  # the engine hands each scorer its own copy of the batch
    assert task.forwards == 1
    x2 = x.clone()
    x2[0, 0, 0, 0] = (x2[0, 0, 0, 0] + 0.25) % 1  # still an image in [0, 1]
    scorers[0](x2, labels=y)
    assert task.forwards == 2, "a batch differing in one pixel is not served from the cache"
    y2 = torch.roll(y, 1)
    with torch.no_grad():
        expected = (model(x2).argmax(1) == y2).double()
    assert torch.equal(scorers[0](x2, labels=y2), expected)
    assert task.forwards == 2, "same images, other labels: outputs from the cached logits"


def test_scorers_refuse_missing_or_mismatched_labels(model, scenes):
    correct = scorers_for("m0", model=model)[0]
    x = scenes.batch(range(4))
    with pytest.raises(QbenchError, match="needs labels"):
        correct(x)
    with pytest.raises(ValueError, match="labels"):
        correct(x, labels=torch.zeros(3, dtype=torch.long))
    with pytest.raises(QbenchError, match="task:MODEL"):
        create("task:only-two")


def test_engine_passes_labels_and_records_datasets_without_labels(tmp_path, model, scenes):
    store = Store(tmp_path / "store")
    ds = scenes.subset(range(10))
    scorers = scorers_for("m0", model=model)
    summary = score(store, "r", ds, grid(["gaussian_noise"], [2]), scorers, batch_size=4,
                    progress=False)
    assert summary.written == 10 * 2 * 3 and summary.failed == 0
    rows = store.rows("r")
    correct = rows[rows.scorer == "task:m0:correct"].sort_values(["corruption", "item"])
    clean = correct[correct.corruption == "clean"]
    with torch.no_grad():
        expected = (model(ds.batch(range(10))).argmax(1).numpy() == ds.labels).astype(float)
    assert np.array_equal(clean.value.to_numpy(), expected)
    # a set without labels: every task score is a recorded failure with the reason
    unlabelled = ImageSet("plain", "test", ds.item_ids[:3], array=ds.array[:3])
    s2 = score(store, "r2", unlabelled, grid([], []), scorers, progress=False)
    assert s2.written == 0 and s2.failed == 9
    assert store.failures("r2").reason.str.contains("needs class labels").all()


def test_task_scorer_names_resolve_through_the_metric_registry():
    from qbench.metrics import create
    from qbench.metrics.task import TaskScorer

    m = create("task:scenes-vgg-s-s0:loss")
    assert isinstance(m, TaskScorer)
    assert m.info.kind == "task" and m.info.higher_is_better is False
