import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import qbench.data as data
from qbench.cli import cli
from qbench.models import CheckpointError, build, load, zoo
from qbench.models.checkpoint import SHIPPED, user_dir, verify_hash
from qbench.models.nets import Normalize
from qbench.models.train import TrainConfig, train_classifier
from tests.conftest import SMALL

ARCHS = ["resnet-s", "vgg-s", "mobilenet-s", "proxy-cnn"]


def tiny_sets(size=32):
    return [data.load("scenes", split=s, size=size, **SMALL) for s in ("train", "val", "test")]


@pytest.mark.parametrize("arch", ARCHS)
def test_classifiers_take_unit_range_images_return_logits_and_expose_a_cam_layer(arch):
    torch.manual_seed(0)
    model = build(arch).eval()
    assert sum(p.numel() for p in model.parameters()) <= 1_000_000
    seen = []
    model.cam_layer.register_forward_hook(lambda m, i, o: seen.append(o))
    assert any(m is model.cam_layer for m in model.modules())
    for side in (64, 48):
        logits = model(torch.rand(2, 3, side, side))
        assert logits.shape == (2, 10)
    assert seen[0].ndim == 4 and seen[0].shape[-1] == 8, "8x8 CAM map on 64x64 inputs"
    # normalisation constants live in the model but not in the checkpoint
    assert any(isinstance(m, Normalize) for m in model.modules())
    assert not any(k.startswith("normalize.") for k in model.state_dict())


def test_same_seed_trains_byte_identical_weights_and_another_seed_differs():
    train, val, _ = tiny_sets()
    cfg = TrainConfig(epochs=2, batch_size=8, max_steps=3)

    def weights(seed):
        model, metrics = train_classifier("proxy-cnn", seed, 2, train, val, config=cfg, log=None)
        assert metrics["steps"] == 3 and 0.0 <= metrics["val_acc"] <= 1.0
        return b"".join(v.numpy().tobytes() for v in model.state_dict().values())

    assert weights(0) == weights(0)
    assert weights(0) != weights(1)


def test_random_shift_translates_each_image_by_its_own_offset_with_reflect_padding():
    from qbench.models.train import random_shift

    x = torch.rand(2, 3, 16, 16)
    out = random_shift(x, torch.tensor([2, 0]), torch.tensor([-1, 3]), shift=4)
    assert out.shape == x.shape
    # image 0 moved by (+2, -1): output pixel (i, j) is input pixel (i + 2, j - 1) inside
    assert torch.equal(out[0, :, 2:12, 3:14], x[0, :, 4:14, 2:13])
    assert torch.equal(out[1, :, :, :10], x[1, :, :, 3:13])
    assert torch.equal(random_shift(x, torch.zeros(2, dtype=torch.long),
                                    torch.zeros(2, dtype=torch.long), 4), x)


def test_shift_augmentation_changes_training_and_is_itself_deterministic():
    train, val, _ = tiny_sets()

    def weights(**opts):
        cfg = TrainConfig(epochs=1, batch_size=8, max_steps=3, **opts)
        model, _ = train_classifier("proxy-cnn", 0, 1, train, val, config=cfg, log=None)
        return b"".join(v.numpy().tobytes() for v in model.state_dict().values())

    assert weights(shift=2) == weights(shift=2)
    assert weights(shift=2) != weights()


def test_training_leaves_the_callers_global_rng_untouched():
    train, _, _ = tiny_sets()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_classifier("vgg-s", 0, 1, train, config=TrainConfig(batch_size=8, max_steps=1),
                     log=None)
    assert torch.equal(torch.rand(3), expected)


def test_zoo_table_has_three_archs_times_two_seeds_and_a_separate_proxy():
    names = list(zoo.ZOO)
    assert len(names) == 7 and "scenes-proxy-cnn-s0" in names
    task = zoo.task_models()
    assert len(task) == 6 and "scenes-proxy-cnn-s0" not in task
    assert {zoo.ZOO[n].arch for n in task} == {"resnet-s", "vgg-s", "mobilenet-s"}
    assert {zoo.ZOO[n].seed for n in task} == {0, 1}
    with pytest.raises(Exception, match="unknown zoo entry"):
        zoo.entry("scenes-nope")


@pytest.fixture
def tiny_entry(monkeypatch):
    e = zoo.ZooEntry("tiny-proxy", "proxy-cnn", 0, 1,
                     data_options={"size": 32, "seed": 0, **SMALL}, role="proxy")
    monkeypatch.setitem(zoo.ZOO, e.name, e)
    return e


def test_train_entry_records_provenance_and_verify_rehashes_and_re_evaluates(tiny_entry):
    path = zoo.train_entry(tiny_entry.name)
    assert path.parent == user_dir()
    prov = verify_hash(path)
    assert prov.arch == "proxy-cnn" and prov.seed == 0 and prov.command
    assert {"test_acc", "val_acc"} <= set(prov.metrics)
    train, val, test = tiny_sets()
    assert prov.data_fingerprint == zoo.data_fingerprint(train, val, test)
    r = zoo.verify_entry(tiny_entry.name)
    assert r["test_acc"] == pytest.approx(prov.metrics["test_acc"])
    row = zoo.status(tiny_entry.name)
    assert row["trained"] and row["sha256"] == prov.sha256[:12]

    meta = path.with_suffix(".json")
    recorded = json.loads(meta.read_text())
    recorded["metrics"]["test_acc"] += 0.05
    meta.write_text(json.dumps(recorded))
    with pytest.raises(CheckpointError, match="re-measured clean test accuracy"):
        zoo.verify_entry(tiny_entry.name)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(CheckpointError, match="sha256"):
        zoo.verify_entry(tiny_entry.name)


def test_zoo_cli_lists_every_entry_and_verify_fails_loudly(tiny_entry):
    runner = CliRunner()
    out = runner.invoke(cli, ["zoo", "list"])
    assert out.exit_code == 0
    for name in zoo.ZOO:
        assert name in out.output
    zoo.train_entry(tiny_entry.name)
    meta = user_dir() / "tiny-proxy.json"
    recorded = json.loads(meta.read_text())
    recorded["metrics"]["test_acc"] = 2.0
    meta.write_text(json.dumps(recorded))
    bad = runner.invoke(cli, ["zoo", "verify", "tiny-proxy"])
    assert bad.exit_code != 0 and "FAIL tiny-proxy" in bad.output
    (user_dir() / "tiny-proxy.pt").unlink()


# Shipped checkpoints allowed below the 90% floor of issue 5: none since the resnet-s and
# mobilenet-s entries were retrained with shifts for 30 epochs. The test pins the set both ways.
KNOWN_BELOW_FLOOR: set[str] = set()


def test_shipped_checkpoints_are_small_hashed_and_load():
    for name in zoo.ZOO:
        pt = SHIPPED / f"{name}.pt"
        assert pt.exists(), f"{name} is not committed under {SHIPPED}"
        assert pt.stat().st_size <= 5 * 2**20
        prov = verify_hash(pt)
        assert prov.arch == zoo.ZOO[name].arch and prov.seed == zoo.ZOO[name].seed
        assert prov.metrics["epochs"] == zoo.ZOO[name].epochs, f"{name} trained with other epochs"
        assert prov.extra.get("train_options", {}) == zoo.ZOO[name].train_options, \
            f"{name} trained with other augmentation"
        model, _ = load(pt)
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 10)


def test_exactly_the_known_checkpoints_are_below_the_accuracy_floor():
    below = {name for name in zoo.ZOO
             if verify_hash(SHIPPED / f"{name}.pt").metrics["test_acc"] < zoo.ACC_FLOOR}
    assert below == KNOWN_BELOW_FLOOR


def test_pretrained_torchvision_weights_load_from_the_hub_cache_only(tmp_path, monkeypatch):
    import torchvision

    from qbench.models import hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = hub.expected_path("resnet18", "IMAGENET1K_V1")
    assert expected == Path(tmp_path) / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(CheckpointError, match=str(expected).replace(".", r"\.")):
        hub.pretrained("resnet18", "IMAGENET1K_V1")
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    expected.parent.mkdir(parents=True)
    torch.save(state, expected)
    model = hub.pretrained("resnet18", "IMAGENET1K_V1")
    for k, v in model.net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert model.cam_layer is model.net.layer4
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
    expected.write_bytes(b"not a state dict")
    with pytest.raises(CheckpointError, match="not a usable resnet18"):
        hub.pretrained("resnet18", "IMAGENET1K_V1")
