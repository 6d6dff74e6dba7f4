"""Gradient methods: shapes, batching, determinism, targets, reductions and IG completeness."""

from __future__ import annotations

import pytest
import torch
from explain_models import tiny_cnn, tiny_images, tiny_regressor

import qbench.explain as explain
from qbench.errors import QbenchError
from qbench.explain import gradients as G

METHODS = ("gradient", "gradient_x_input", "integrated_gradients", "smoothgrad")
FAST = {"integrated_gradients": {"steps": 8}, "smoothgrad": {"samples": 6}}


@pytest.fixture(scope="module")
def model():
    return tiny_cnn()


@pytest.mark.parametrize("method", METHODS)
def test_maps_are_n_h_w_at_input_resolution(model, method):
    maps = explain(model, tiny_images(2), method=method, **FAST.get(method, {}))
    assert maps.shape == (2, 32, 32) and maps.dtype == torch.float32
    assert not maps.requires_grad and maps.abs().max() > 0


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_per_image_and_is_deterministic(model, method):
    x, target = tiny_images(3, seed=1), torch.tensor([1, 0, 2])
    opts = {**FAST.get(method, {}), "batch_size": 5}
    batch = explain(model, x, target, method=method, **opts)
    single = torch.cat([explain(model, x[i:i + 1], target[i:i + 1], method=method, **opts)
                        for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-9)
    assert torch.equal(batch, explain(model, x, target, method=method, **opts))


@pytest.mark.parametrize("method", METHODS)
def test_target_none_explains_the_predicted_class(model, method):
    x = tiny_images(2)
    opts = FAST.get(method, {})
    assert torch.equal(explain(model, x, method=method, **opts),
                       explain(model, x, model(x).argmax(1), method=method, **opts))


@pytest.mark.parametrize("method", METHODS)
def test_scalar_regressor_target_and_sign(method):
    reg, x = tiny_regressor(), tiny_images(2)
    opts = {**FAST.get(method, {}), "reduce": "sum"}
    up = explain(reg, x, method=method, **opts)
    down = explain(reg, x, lambda out: -out, method=method, **opts)
    assert up.shape == (2, 32, 32)
    torch.testing.assert_close(down, -up)


def test_smoothgrad_seed_controls_the_noise(model):
    x = tiny_images(1)
    a = explain(model, x, 0, method="smoothgrad", samples=4, seed=1)
    b = explain(model, x, 0, method="smoothgrad", samples=4, seed=2)
    assert not torch.equal(a, b)
    no_noise = explain(model, x, 0, method="smoothgrad", samples=2, sigma=0.0)
    torch.testing.assert_close(no_noise, explain(model, x, 0, method="gradient"))


def test_integrated_gradients_completeness(model):
    """Σ attributions ≈ y(x) − y(baseline) for a fine quadrature."""
    x, target = tiny_images(2), torch.tensor([0, 1])
    attr = G.integrated_gradients_attributions(model, x, target, steps=64)
    with torch.no_grad():
        gap = model(x)[:, :].gather(1, target[:, None])[:, 0] - \
            model(torch.zeros_like(x)).gather(1, target[:, None])[:, 0]
    # piecewise-linear net: the quadrature error at the ReLU kinks is ~0.5 % at 64 steps
    torch.testing.assert_close(attr.flatten(1).sum(1), gap, rtol=2e-2, atol=1e-6)
    ig_map = explain(model, x, target, method="integrated_gradients", steps=64)
    torch.testing.assert_close(ig_map.flatten(1).sum(1), attr.flatten(1).sum(1))


def test_integrated_gradients_baseline_option(model):
    x = tiny_images(2)
    grey = G.integrated_gradients_attributions(model, x, 0, baseline=0.5, steps=8)
    same = G.integrated_gradients_attributions(model, x, 0, baseline=torch.full_like(x, 0.5),
                                               steps=8)
    torch.testing.assert_close(grey, same)
    zero = G.integrated_gradients_attributions(model, x, 0, baseline=x, steps=8)
    assert zero.abs().max() == 0


def test_channel_reductions(model):
    x = tiny_images(2)
    attr = G.gradient_attributions(model, x, 1)
    torch.testing.assert_close(explain(model, x, 1, method="gradient"), attr.abs().amax(1))
    torch.testing.assert_close(explain(model, x, 1, method="gradient", reduce="sum"),
                               attr.sum(1))
    torch.testing.assert_close(explain(model, x, 1, method="gradient", reduce="abssum"),
                               attr.abs().sum(1))
    normed = explain(model, x, 1, method="gradient_x_input", normalize="max")
    assert torch.allclose(normed.abs().flatten(1).max(1).values, torch.ones(2))
    with pytest.raises(QbenchError, match="reduce"):
        explain(model, x, 1, method="gradient", reduce="mean")


def test_gradient_is_the_finite_difference_of_the_target_logit(model):
    x = tiny_images(1).double()
    m = tiny_cnn().double()
    grad = G.gradient_attributions(m, x, 2)
    bump = torch.zeros_like(x)
    bump[0, 1, 10, 20] = 1e-6
    with torch.no_grad():
        fd = (m(x + bump)[0, 2] - m(x - bump)[0, 2]) / 2e-6
    torch.testing.assert_close(grad[0, 1, 10, 20], fd, rtol=1e-4, atol=1e-9)


def test_library_functions_pin_target_none_to_the_clean_prediction(model):
    """Noisy or interpolated copies keep explaining the original image's predicted class."""
    x = tiny_images(2)
    predicted = model(x).argmax(1)
    torch.testing.assert_close(G.smoothgrad_attributions(model, x, None, samples=3, sigma=0.5),
                               G.smoothgrad_attributions(model, x, predicted, samples=3,
                                                         sigma=0.5))
    torch.testing.assert_close(G.integrated_gradients_attributions(model, x, None, steps=4),
                               G.integrated_gradients_attributions(model, x, predicted,
                                                                  steps=4))
