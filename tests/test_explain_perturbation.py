"""RISE, Meaningful, Extremal and Robust Perturbation: shapes, determinism, batching, and that
they find planted evidence."""

from __future__ import annotations

import pytest
import torch

import qbench.explain as explain
from qbench.explain import evaluate as ev
from qbench.explain.rise import rise_masks
from tests.explain_models import tiny_cnn, tiny_images, tiny_regressor
from tests.planted_models import PlantedModel, noise_images

FAST = {
    "rise": {"n_masks": 64},
    "meaningful_perturbation": {"iterations": 5},
    "extremal_perturbation": {"iterations": 5, "step": 4, "sigma": 4.0},
    "robust_perturbation": {"iterations": 5},
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("method", sorted(FAST))
def test_maps_have_input_resolution_and_repeat_exactly(method):
    model, x = tiny_cnn(), tiny_images(2, 32)
    a = explain(model, x, method=method, **FAST[method])
    b = explain(model, x, method=method, **FAST[method])
    assert a.shape == (2, 32, 32) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert explain.info(method).family == "perturbation"


@pytest.mark.parametrize("method", sorted(FAST))
def test_scalar_output_models_are_explained_by_their_score(method):
    a = explain(tiny_regressor(), tiny_images(2, 32), method=method, **FAST[method])
    assert a.shape == (2, 32, 32) and torch.isfinite(a).all()


@pytest.mark.parametrize("method", sorted(FAST))
def test_model_parameters_are_left_untouched(method):
    model, x = tiny_cnn(), tiny_images(2, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    explain(model, x, method=method, **FAST[method])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_rise_seed_changes_the_map_and_batch_equals_single_images():
    model, x = tiny_cnn(), tiny_images(3, 32)
    a = explain(model, x, method="rise", n_masks=64, seed=0)
    assert not torch.equal(a, explain(model, x, method="rise", n_masks=64, seed=1))
    single = torch.cat([explain(model, x[i:i + 1], method="rise", n_masks=64, seed=0)
                        for i in range(3)])
    torch.testing.assert_close(a, single, rtol=1e-4, atol=1e-5)


def test_extremal_perturbation_batch_equals_single_images():
    model, x = tiny_cnn(), tiny_images(2, 32)
    opts = FAST["extremal_perturbation"]
    a = explain(model, x, target=[0, 1], method="extremal_perturbation", **opts)
    single = torch.cat([explain(model, x[i:i + 1], target=[i], method="extremal_perturbation",
                                **opts) for i in range(2)])
    torch.testing.assert_close(a, single, rtol=1e-4, atol=1e-4)


def test_rise_masks_are_smooth_keep_probability_p_and_seeded():
    m = rise_masks(400, 32, 32, cells=4, p=0.3, seed=3)
    assert m.shape == (400, 32, 32) and m.min() >= 0 and m.max() <= 1
    assert abs(m.mean().item() - 0.3) < 0.05
    assert torch.equal(m, rise_masks(400, 32, 32, cells=4, p=0.3, seed=3))
    assert ((m > 0.01) & (m < 0.99)).any()  # bilinear upsampling, not hard cells


PLANTED = [
    ("rise", {"n_masks": 300}, 4.0),
    ("meaningful_perturbation", {"iterations": 150, "mask_size": 8}, 4.0),
    ("robust_perturbation", {"iterations": 30}, 4.0),
    # EP maximises the logit; the planted logit needs a gain comparable to a real network's
    # for its gradient to beat the area term early; jitter (a horizontal flip) would move the
    # planted region, which real images' classes do not care about.
    ("extremal_perturbation", {"iterations": 60, "jitter": False, "step": 2, "sigma": 3.0},
     40.0),
]


@pytest.mark.parametrize(("method", "opts", "gain"), PLANTED)
def test_planted_evidence_is_found(method, opts, gain):
    model = PlantedModel(gain=gain).eval()
    x = noise_images(2)
    target = torch.zeros(2, dtype=torch.long)
    region = model.region.expand(2, 32, 32)
    maps = explain(model, x, target, method=method, **opts)
    chance = region[0].mean().item()
    assert (ev.pointing_game(maps, region) == 1).all()
    assert (ev.energy_pointing_game(maps, region) > 2 * chance).all()
    dele = ev.deletion_auc(model, x, maps, target, substitute="blur")
    ins = ev.insertion_auc(model, x, maps, target, substitute="blur")
    assert (dele < ins).all()
