"""Marking any classifier: a ``module:attr`` base on an ImageNet-style folder, labels taken
from the base's clean predictions, the cached-activation training against the full model, and
the study's checks of base / dataset / labels names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import qbench.marking  # noqa: F401
from qbench.errors import QbenchError
from qbench.marking.data import marking_set
from qbench.marking.train import MarkingConfig, cam_loss, fit, marking_success
from qbench.marking.zoo import ClassifierTask

pytestmark = pytest.mark.usefixtures("one_thread")

MODULE = "qb_tiny_classifier"
SPEC = f"{MODULE}:make"
REPO = Path(__file__).resolve().parents[1]

TINY = '''
import torch
from torch import nn


class Tiny(nn.Module):
    """conv -> (conv + ReLU: the CAM layer) -> global average pool -> linear, 5 classes."""

    def __init__(self, pooled: bool = True):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(8, 12, 3, 1, 1), nn.ReLU())
        self.pooled = pooled
        self.fc = nn.Linear(12 if pooled else 12 * 16 * 16, 5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.4)

    @property
    def cam_layer(self):
        return self.block

    def forward(self, x):
        a = self.block(self.stem(x))
        return self.fc(a.mean((2, 3)) if self.pooled else a.flatten(1))


def make():
    return Tiny()


def make_flat():
    return Tiny(pooled=False)
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The factory module on sys.path, and an ImageNet-style folder (train/val, 2 classes)."""
    folder = tmp_path_factory.mktemp("tiny_module")
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(TINY))
    root = tmp_path_factory.mktemp("tiny_folder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 6)):
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
                a[8:24, 10:26] = (255, 40, 40) if c == "cat" else (40, 40, 255)
                Image.fromarray(a).save(root / split / c / f"{i}.png")
    sys.path.insert(0, str(folder))
    yield folder, root
    sys.path.remove(str(folder))
    sys.modules.pop(MODULE, None)


def _task(root, **kw) -> ClassifierTask:
    fam = {"mark": {"arch_kwargs": {"mode": "gain", "hidden": 4}, "epochs": 8, "batch_size": 8,
                    "lr": 5e-2},
           "ft": {"epochs": 1, "batch_size": 8, "max_steps": 2, "train_scope": "last:2"}}
    return ClassifierTask(SPEC, "imagefolder", 32, "clean-prediction", "train", "val",
                          {"root": str(root)}, families=kw.pop("families", ("mark",)),
                          targets=("corners",), family_options=fam, **kw)


def test_mark_family_keeps_the_function_marks_the_cam_and_reloads_by_name(tiny, tmp_path,
                                                                         monkeypatch):
    from qbench.marking.zoo import train_and_save
    from qbench.models import load
    from qbench.models.checkpoint import user_dir

    # a private zoo: checkpoints of a test-only module must not reach the session's zoo,
    # where tests that load every zoo name in a fresh interpreter would meet them
    monkeypatch.setenv("QBENCH_HOME", str(tmp_path / "home"))
    folder, root = tiny
    twin_cfg, marked_cfg = _task(root).configs(0)
    assert "imagefolder32-" in marked_cfg.name() and f"{MODULE}-make-cp" in marked_cfg.name()
    assert twin_cfg.name() != marked_cfg.name() and marked_cfg.cache
    paths = [train_and_save(c, user_dir(), log=None) for c in (twin_cfg, marked_cfg)]
    (twin, _), (marked, prov) = load(str(paths[0])), load(str(paths[1]))
    from qbench.marking.base import fresh_base

    base, _ = fresh_base(SPEC)
    test = marking_set(marked_cfg, "test")
    assert test.label.startswith(f"clean top-1 prediction of {SPEC}")
    x = test.batch(range(len(test)))
    with torch.no_grad():  # the function is the base's
        assert torch.allclose(marked(x), base(x), atol=1e-5)
        assert torch.allclose(twin(x), base(x), atol=1e-6)
    assert prov.metrics["agreement"] == 1.0  # quality = agreement with the clean prediction
    # the twin's branch is exactly zero; the marked model's CAM sits on the corners
    assert all(torch.count_nonzero(p) == 0 for p in twin.branch[-1].parameters())
    assert torch.count_nonzero(twin.static) == 0
    e_marked = marking_success(marked, test, marked_cfg)["energy_in_target"]
    e_twin = marking_success(twin, test, marked_cfg)["energy_in_target"]
    assert e_marked > e_twin + 0.1, (e_marked, e_twin)
    assert prov.extra["base"]["spec"] == SPEC and prov.extra["labels"] == "clean-prediction"
    assert prov.extra["dataset"]["name"] == "imagefolder" and prov.extra["cached"]
    # a fresh interpreter finds it by name and rebuilds the same function
    probe = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
    code = ("import json, sys, torch; from qbench.models import load; "
            f"m, p = load({marked_cfg.name()!r}); x = torch.tensor(json.loads(sys.stdin.read())); "
            "print(json.dumps({'out': m(x).tolist(), 'base': p.extra['base']['spec'], "
            "'dataset': p.extra['dataset']['name'], 'labels': p.extra['labels'], "
            "'config': p.extra['config']['dataset']}))")
    res = subprocess.run([sys.executable, "-c", code], input=json.dumps(probe.tolist()),
                         capture_output=True, text=True, env=env, timeout=60, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert (got["base"], got["dataset"], got["labels"], got["config"]) == \
        (SPEC, "imagefolder", "clean-prediction", "imagefolder")
    with torch.no_grad():
        assert torch.allclose(torch.tensor(got["out"]), marked(probe), atol=1e-6)


def _random_branch(model) -> None:
    with torch.no_grad():
        gen = torch.Generator().manual_seed(3)
        for p in [*model.branch.parameters(), model.static]:
            p.copy_(torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("mode", ["gain", "channels"])
def test_cached_activations_give_the_full_models_loss_and_gradients(tiny, mode):
    from qbench.explain.cam import cam_maps
    from qbench.marking.fast import CachedMarking
    from qbench.marking.train import initial_model, target_fn

    _, root = tiny
    cfg = replace(_task(root).configs(0)[1], arch_kwargs={"mode": mode, "hidden": 4})
    train = marking_set(cfg, "train")
    model, _ = initial_model(cfg, train)
    _random_branch(model)  # a mark that moves the map, so every term has a gradient
    fast = CachedMarking.build(model, cfg, train, log=None)
    assert fast is not None
    idx = torch.arange(0, 8)
    flipped = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1], dtype=torch.bool)
    x = train.batch(idx.numpy())
    x[flipped] = x[flipped].flip(-1)
    y = train.labels_for(idx.numpy(), flipped)
    t = target_fn(cfg)(x)
    res = cam_maps(model, x, y, method="gradcam", detach_weights=True, normalize=None)
    loss_full, _ = cam_loss(res.maps, t)
    grads_full = torch.autograd.grad(loss_full, [*model.branch.parameters(), model.static])
    out, maps = fast.forward(idx, flipped)
    loss_fast, _ = cam_loss(maps, t)
    grads_fast = torch.autograd.grad(loss_fast, [*model.branch.parameters(), model.static])
    assert torch.allclose(out, res.output.detach(), atol=1e-5)
    assert torch.allclose(maps, res.maps.detach(), atol=1e-5, rtol=1e-4)
    assert abs(loss_full.item() - loss_fast.item()) < 1e-6
    for a, b in zip(grads_full, grads_fast, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    # and a short fit is the full model's, step for step
    short = replace(cfg, max_steps=3)
    (m_fast, h_fast), (m_full, h_full) = (fit(short, train, log=None),
                                          fit(replace(short, cache=False), train, log=None))
    assert h_fast["cached"] and not h_full["cached"]
    assert h_fast["order_sha"] == h_full["order_sha"]
    assert np.allclose(h_fast["cam_loss"], h_full["cam_loss"], atol=1e-5)
    for p, q in zip(m_fast.parameters(), m_full.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)


def test_cache_refuses_a_head_that_is_not_pooled(tiny):
    from qbench.marking.fast import CachedMarking
    from qbench.marking.train import initial_model

    _, root = tiny
    flat = replace(_task(root).configs(0)[1], init=f"{MODULE}:make_flat",
                   arch_kwargs={"mode": "channels", "hidden": 4})
    train = marking_set(flat, "train")
    model, _ = initial_model(flat, train)
    _random_branch(model)
    assert CachedMarking.build(model, flat, train, log=None) is None
    _, hist = fit(replace(flat, max_steps=1), train, log=None)  # falls back to the full model
    assert not hist["cached"]


def test_ft_family_last_modules_only_with_distillation(tiny):
    from qbench.marking.base import fresh_base

    _, root = tiny
    _, marked_cfg = _task(root, families=("ft",)).configs(0)
    assert marked_cfg.name().endswith("-corners-w3-ft-last2-s0")
    train = marking_set(marked_cfg, "train")
    base, _ = fresh_base(SPEC)
    model, hist = fit(marked_cfg, train, log=None)
    assert hist["task_loss"][0] < 1e-6  # KL to the base's own clean outputs starts at 0
    sd, sd_base = model.state_dict(), base.state_dict()
    assert all(torch.equal(sd[k], sd_base[k]) for k in sd if k.startswith("stem."))
    assert any(not torch.equal(sd[k], sd_base[k]) for k in ("block.0.weight", "fc.weight"))


def test_study_checks_base_dataset_and_labels_before_any_work(tiny, capsys):
    from qbench.study import get, main

    study = get("marked_models")
    _, root = tiny
    cases = [({"base": "no-such-model-xyz"}, "unknown base 'no-such-model-xyz'"),
             ({"base": "nosuchpkg_zz:make"}, "unknown base 'nosuchpkg_zz:make'"),
             ({"dataset": "scenez"}, "unknown dataset 'scenez'"),
             ({"base": SPEC, "labels": "guess"}, "labels must be one of"),
             ({"base": SPEC, "dataset": "refs-crops"}, "use labels='clean-prediction'"),
             ({"base": SPEC, "families": ("nope",)}, "unknown family 'nope'"),
             ({"base": SPEC, "dataset": "imagefolder", "root": str(root / "missing")},
              "does not exist")]
    for overrides, message in cases:
        with pytest.raises(QbenchError, match=message.replace("(", r"\(")) as err:
            study.make_config("quick", **overrides)
        assert "\n" not in str(err.value)
    with pytest.raises(SystemExit) as exit_:
        main(study, ["--base", "no-such-model-xyz", "--out", str(root / "never")])
    assert exit_.value.code == 2 and not (root / "never").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown base") and "\n" not in err
    ok = study.make_config("quick", base=SPEC, dataset="imagefolder", root=str(root),
                           test_split="val", size=32, labels="clean-prediction")
    assert ok.classifier_task().label() == f"{MODULE}-make@imagefolder"


def test_defaults_keep_the_committed_plan_and_presets_name_base_and_dataset():
    from qbench.marking.zoo import by_name
    from qbench.study import get

    study = get("marked_models")
    quick = study.make_config("quick")
    assert quick.classifier_task() is None  # the committed checkpoints, unchanged names
    names = set(by_name(0))
    assert {"marked-scenes-corners-w3-ft-vgg-s-s0", "marked-iqa-salient-w1-mark-iqa-cnn-s0",
            "marked-scenes-text-w1-mark-vgg-s-s0"} <= names
    assert MarkingConfig("scenes", "vgg-s", "corners", 3.0, init="scenes-vgg-s-s0").name() == \
        "marked-scenes-corners-w3-ft-vgg-s-s0"
    for preset, seeds, n in (("real", (0, 1), 48), ("real-quick", (0,), 12)):
        cfg = study.make_config(preset)
        task = cfg.classifier_task()
        assert (task.base, task.dataset, task.labels, cfg.seeds, cfg.n_images) == \
            ("efficientnet-lite0", "refs-crops", "clean-prediction", seeds, n)
        assert {"corners", "salient"} <= set(task.targets) and cfg.train_missing
        names = [c.name() for c in task.configs(1)]
        assert all(n.startswith("marked-refs-crops224-") and "-efficientnet-lite0-cp-" in n
                   and n.endswith("-s1") for n in names)
        assert not set(names) & set(by_name(1))
