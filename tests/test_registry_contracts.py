"""Contract tests driven by the registries: an entry is tested the moment it registers.

The model is pyiqa's ``test_metric_general.py`` and timm's ``test_models.py``: loop over
``names()`` and hold every entry to the same contract. Corruptions have theirs in
``test_corrupt_basics.py`` (also parametrised over ``qbench.corrupt.names()``).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch
from explain_models import tiny_cnn, tiny_regressor

import qbench
from qbench import data, explain, metrics, models
from qbench.errors import QbenchError, UnknownNameError
from qbench.registry import Registry, RegistryError

# options that cut an explainer's budget for a contract test, applied when its signature has
# them (a new method with an iteration budget is made cheap without being listed here)
CHEAP = {"iterations": 3, "n_masks": 32, "steps": 4, "samples": 3, "num_scales": 2}


def cheap_options(fn) -> dict:
    params = inspect.signature(fn).parameters
    return {k: v for k, v in CHEAP.items() if k in params}


# ------------------------------------------------------------------------------ the registry

def test_registry_resolves_lazy_entries_only_when_used_and_says_did_you_mean():
    reg: Registry = Registry("widget")
    reg.register("lazy", "collections:OrderedDict", info="string:ascii_letters")
    assert reg.info("lazy") == "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert reg.get("lazy").__name__ == "OrderedDict"
    with pytest.raises(UnknownNameError, match="did you mean 'lazy'"):
        reg.get("lazzy")
    with pytest.raises(RegistryError, match="registered twice"):
        reg.register("lazy", dict)
    reg.register("lazy", dict, replace=True)
    assert reg.get("lazy") is dict and "lazy" in reg and len(reg) == 1


def test_registry_filters_names_on_metadata_and_gives_a_read_only_view():
    reg: Registry = Registry("widget")
    reg.register("a", 1, info=type("I", (), {"family": "x"})())
    reg.register("b", 2, info=type("I", (), {"family": "y"})())
    assert reg.names(family="y") == ["b"]
    view = reg.frozen()
    assert dict(view) == {"a": 1, "b": 2}
    with pytest.raises(TypeError):
        view["c"] = 3  # type: ignore[index]


def test_a_lazy_entry_is_replaced_by_the_object_its_module_registers():
    reg: Registry = Registry("widget")
    reg.register("od", "collections:OrderedDict")
    from collections import OrderedDict

    reg.register("od", OrderedDict)  # what the module itself would do on import: no clash
    assert reg.get("od") is OrderedDict


@pytest.mark.parametrize("kind,names", [
    ("corruption", qbench.corrupt.names), ("metric", lambda: metrics.names(False)),
    ("explanation method", explain.names), ("dataset", data.names),
    ("architecture", models.archs)])
def test_every_kind_lists_names_and_refuses_unknown_ones_the_same_way(kind, names):
    listed = names()
    assert listed and len(set(listed)) == len(listed)
    lookup = {"corruption": qbench.corrupt.info, "metric": metrics.info,
              "explanation method": explain.info, "dataset": data.info,
              "architecture": qbench.models.registry.info}[kind]
    with pytest.raises(UnknownNameError, match=f"unknown {kind} .*did you mean"):
        lookup(listed[0] + "x")


# ------------------------------------------------------------------------------ explainers

@pytest.fixture(scope="module")
def classifier():
    return tiny_cnn(num_classes=3, seed=0)


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(0)
    return torch.rand(3, 3, 32, 32)


@pytest.mark.parametrize("name", explain.names())
def test_every_explainer_returns_one_finite_map_per_image_at_input_size(name, classifier,
                                                                        images):
    fn, info = explain.registry.get(name)
    opts = cheap_options(fn)
    maps = explain(classifier, images, target=None, method=name, **opts)
    assert maps.shape == (3, 32, 32) and torch.isfinite(maps).all()
    assert info.name == name and info.family in ("cam", "gradient", "perturbation")
    assert maps.flatten(1).std(1).gt(0).all(), f"{name} gave a constant map"


@pytest.mark.parametrize("name", explain.names())
def test_every_explainer_is_deterministic_and_a_batch_equals_per_image_calls(name, classifier,
                                                                            images):
    fn, _ = explain.registry.get(name)
    opts = cheap_options(fn)
    target = torch.tensor([0, 1, 2])
    batch = explain(classifier, images, target=target, method=name, **opts)
    again = explain(classifier, images, target=target, method=name, **opts)
    assert torch.equal(batch, again), f"{name} is not deterministic"
    single = torch.cat([explain(classifier, images[i:i + 1], target=int(target[i]),
                                method=name, **opts) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-4, rtol=1e-3,
                               msg=f"{name}: a batch differs from one image at a time")


@pytest.mark.parametrize("name", explain.names())
def test_every_explainer_explains_a_scalar_output_model(name, images):
    fn, _ = explain.registry.get(name)
    maps = explain(tiny_regressor(seed=0), images[:2], method=name, **cheap_options(fn))
    assert maps.shape == (2, 32, 32) and torch.isfinite(maps).all()


# ------------------------------------------------------------------------------ metrics

BUILTIN = metrics.names(include_pyiqa=False)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_metric_passes_the_leaderboard_admission_probe(name):
    from qbench.leaderboard.probe import probe

    metric = metrics.create(name)
    report = probe(metric, name)
    assert report.passed, report.reason


@pytest.mark.parametrize("name", [*BUILTIN, "pyiqa:psnr", "pyiqa:ssim"])
def test_every_metric_declares_its_info_without_being_built(name):
    declared = metrics.info(name)
    assert declared == metrics.create(name).info
    assert declared.kind in ("FR", "NR", "task") and isinstance(declared.higher_is_better, bool)


# ------------------------------------------------------------------------------ datasets

@pytest.mark.parametrize("name", data.names(embedded=True))
def test_every_embedded_dataset_loads_images_in_range_with_consistent_labels(name):
    ds = data.load(name)
    assert len(ds) > 0
    x = ds.batch([0, len(ds) - 1])
    assert x.ndim == 4 and x.shape[1] == 3 and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    labels = getattr(ds, "labels", None)
    if labels is not None:
        assert len(labels) == len(ds)


@pytest.mark.parametrize("name", data.names(embedded=False))
def test_every_real_dataset_missing_from_disk_gives_one_clear_error(name, tmp_path):
    with pytest.raises(QbenchError) as err:
        data.load(name, root=tmp_path / "absent")
    assert "\n" not in str(err.value) and str(tmp_path / "absent") in str(err.value)
    assert data.info(name).description


# ------------------------------------------------------------------------------ checkpoints

def test_every_shipped_checkpoint_loads_in_a_fresh_interpreter_with_nothing_else_imported():
    names = models.names()
    assert len(names) >= 10
    code = ("from qbench.models.checkpoint import load\n"
            f"for n in {names!r}:\n    m, p = load(n)\n    assert p.name == n, n\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("arch", models.archs())
def test_every_architecture_builds_and_is_described(arch):
    from qbench.models.registry import info

    assert isinstance(info(arch), str)
    net = models.build(arch, base="vgg-s") if arch == "mark-branch" else models.build(arch)
    assert sum(p.numel() for p in net.parameters()) > 0
