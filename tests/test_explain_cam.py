"""CAM family: shapes, batching, determinism, targets, layers, and differentiability."""

from __future__ import annotations

import pytest
import torch
from explain_models import tiny_cnn, tiny_images, tiny_regressor
from torch import nn

import qbench.explain as explain
from qbench.errors import QbenchError
from qbench.explain.cam import GRADIENT_CAMS, cam_maps
from qbench.explain.layers import resolve_layer

CAMS = (*GRADIENT_CAMS, "scorecam")


@pytest.fixture(scope="module")
def model():
    return tiny_cnn()


@pytest.fixture(scope="module")
def images():
    return tiny_images(2)


@pytest.mark.parametrize("method", CAMS)
def test_maps_are_n_h_w_at_input_resolution_in_unit_range(model, images, method):
    maps = explain(model, images, method=method)
    assert maps.shape == (2, 32, 32) and maps.dtype == torch.float32
    assert maps.min() >= 0 and torch.allclose(maps.flatten(1).max(1).values, torch.ones(2))
    assert not maps.requires_grad


@pytest.mark.parametrize("method", CAMS)
def test_batch_equals_per_image_and_is_deterministic(model, method):
    x = tiny_images(3, seed=1)
    target = torch.tensor([0, 2, 1])
    opts = {"batch_size": 5} if method == "scorecam" else {}
    batch = explain(model, x, target, method=method, **opts)
    single = torch.cat([explain(model, x[i:i + 1], target[i:i + 1], method=method, **opts)
                        for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-6)
    assert torch.equal(batch, explain(model, x, target, method=method, **opts))


@pytest.mark.parametrize("method", CAMS)
def test_target_none_explains_the_predicted_class(model, images, method):
    predicted = model(images).argmax(1)
    assert torch.equal(explain(model, images, method=method),
                       explain(model, images, predicted, method=method))


def test_different_classes_give_different_maps(model, images):
    a = explain(model, images, 0, method="hirescam", layer="features.3")
    b = explain(model, images, 1, method="hirescam", layer="features.3")
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("method", CAMS)
def test_scalar_regressor_target_explains_the_score(method):
    reg, x = tiny_regressor(), tiny_images(2)
    default = explain(reg, x, method=method)
    assert default.shape == (2, 32, 32)
    assert torch.equal(default, explain(reg, x, lambda out: out, method=method))


def test_regressor_sign_convention_raw_map_flips_with_the_score():
    reg, x = tiny_regressor(), tiny_images(2)
    up = cam_maps(reg, x, lambda o: o, method="hirescam", create_graph=False)
    down = cam_maps(reg, x, lambda o: -o, method="hirescam", create_graph=False)
    torch.testing.assert_close(down.raw, -up.raw)
    # positive evidence raises the score: HiResCAM's raw map sums to the first-order change of
    # the score when the layer's activations are scaled from 0 to 1 (linear head after pooling)
    assert up.raw.shape == (2, 8, 8)


def test_normalisation_options(model, images):
    raw = cam_maps(model, images, torch.tensor([0, 1]), method="layercam",
                   create_graph=False, normalize=None)
    peak = raw.maps.flatten(1).max(1).values[:, None, None]
    mx = cam_maps(model, images, torch.tensor([0, 1]), method="layercam",
                  create_graph=False, normalize="max").maps
    torch.testing.assert_close(mx, raw.maps / peak)
    mm = cam_maps(model, images, torch.tensor([0, 1]), method="layercam",
                  create_graph=False, normalize="minmax").maps
    assert torch.allclose(mm.flatten(1).min(1).values, torch.zeros(2))
    small = cam_maps(model, images, torch.tensor([0, 1]), method="layercam",
                     create_graph=False, upsample=False, normalize=None)
    assert small.maps.shape == (2, 8, 8)
    torch.testing.assert_close(small.maps, small.raw.clamp(min=0))


def test_gradcam_matches_its_definition(model, images):
    """α_k = spatial mean of ∂y/∂A_k, map = ReLU(Σ_k α_k A_k), computed here by hand."""
    layer = model.features[3]
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    out = model(images)
    handle.remove()
    (grads,) = torch.autograd.grad(out[:, 2].sum(), store["a"])
    expected = (grads.mean((2, 3), keepdim=True) * store["a"]).sum(1).clamp(min=0).detach()
    got = cam_maps(model, images, torch.tensor([2, 2]), layer, create_graph=False,
                   upsample=False, normalize=None).maps
    torch.testing.assert_close(got, expected)


def _grads_after_map_loss(model, images, method, detach_weights):
    model.zero_grad()
    res = cam_maps(model, images, torch.tensor([0, 1]), layer="features.3", method=method,
                   create_graph=True, detach_weights=detach_weights)
    assert res.maps.requires_grad and res.raw.requires_grad
    target = torch.zeros_like(res.maps)
    target[:, :8, :8] = 1.0  # push the map into a corner
    torch.nn.functional.mse_loss(res.maps, target).backward()
    return {name: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for name, p in model.named_parameters()}


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_map_loss_trains_the_backbone_with_and_without_detached_weights(images, method):
    model = tiny_cnn()
    full = _grads_after_map_loss(model, images, method, detach_weights=False)
    detached = _grads_after_map_loss(model, images, method, detach_weights=True)
    for grads in (full, detached):  # layers below the CAM layer learn either way
        assert grads["features.0.weight"].abs().sum() > 0
        assert grads["features.3.weight"].abs().sum() > 0
    # with weights attached, the loss also reaches the layers above (through ∂y/∂A);
    # detached, those get no gradient from the map: the gradient differs
    assert full["features.6.weight"].abs().sum() > 0 and full["head.weight"].abs().sum() > 0
    assert detached["features.6.weight"].abs().sum() == 0
    assert detached["head.weight"].abs().sum() == 0


def test_detach_changes_backbone_gradient_when_weights_depend_on_activations(images):
    model = tiny_cnn()
    full = _grads_after_map_loss(model, images, "xgradcam", detach_weights=False)
    detached = _grads_after_map_loss(model, images, "xgradcam", detach_weights=True)
    diff = (full["features.0.weight"] - detached["features.0.weight"]).abs().max()
    assert diff > 1e-6 * full["features.0.weight"].abs().max()


def test_training_step_moves_the_map_towards_a_target(images):
    """A few SGD steps on an MSE between the LayerCAM map and a corner mask lower the loss."""
    model = tiny_cnn(seed=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    target = torch.zeros(2, 32, 32)
    target[:, :16, :16] = 1.0

    def loss():
        res = cam_maps(model, images, torch.tensor([0, 0]), method="layercam",
                       detach_weights=True)
        return torch.nn.functional.mse_loss(res.maps, target)

    start = loss().item()
    for _ in range(5):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < start


def test_no_graph_mode_leaves_parameter_gradients_untouched(model, images):
    model.zero_grad(set_to_none=True)
    res = cam_maps(model, images, torch.tensor([0, 1]), create_graph=False)
    assert not res.maps.requires_grad and not res.output.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_explain_works_under_no_grad(model, images):
    with torch.no_grad():
        maps = explain(model, images, method="gradcam")
    assert maps.shape == (2, 32, 32)


def test_layer_resolution(model):
    assert resolve_layer(model, None) is model.cam_layer
    assert resolve_layer(model, "features.3") is model.features[3]
    assert resolve_layer(model, model.features[0]) is model.features[0]
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU())
    assert resolve_layer(plain, None) is plain[2]
    with pytest.raises(QbenchError, match="no layer"):
        resolve_layer(model, "features.99")
    with pytest.raises(QbenchError, match="not a submodule"):
        resolve_layer(model, nn.Conv2d(1, 1, 1))


def test_inplace_op_after_the_layer_does_not_corrupt_the_activation(images):
    torch.manual_seed(0)
    convs = [nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 4, 3, padding=1, stride=2)]
    head = nn.Linear(4, 3)

    def net(inplace):
        return nn.Sequential(convs[0], nn.ReLU(inplace), convs[1], nn.ReLU(inplace),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()

    target = torch.tensor([0, 1])
    a = explain(net(False), images, target, method="hirescam", normalize=None)
    b = explain(net(True), images, target, method="hirescam", normalize=None)
    torch.testing.assert_close(a, b)


def test_class_target_on_scalar_output_is_a_clear_error(images):
    with pytest.raises(QbenchError, match="scalar output"):
        explain(tiny_regressor(), images, 0, method="gradcam")


# --- CAMERAS ---------------------------------------------------------------------------------

def _high_frequency_share(maps: torch.Tensor, cutoff: float = 4.0) -> torch.Tensor:
    """Share of each map's (mean-removed) spectral power above ``cutoff`` cycles per image."""
    centred = maps - maps.mean((1, 2), keepdim=True)
    power = torch.fft.fft2(centred).abs() ** 2
    freq = torch.fft.fftfreq(maps.shape[-1]) * maps.shape[-1]
    radius = (freq[:, None] ** 2 + freq[None, :] ** 2).sqrt()
    return power[:, radius > cutoff].sum(1) / power.flatten(1).sum(1)


def test_cameras_has_finer_detail_than_gradcam_on_a_coarse_layer():
    """The CAM layer is 8×8 on a 32×32 input; CAMERAS reads it at up to 33×33."""
    model, x = tiny_cnn(seed=0), tiny_images(4)
    target = torch.full((4,), 2)  # a class with positive evidence almost everywhere
    cameras = explain(model, x, target, method="cameras")
    gradcam = explain(model, x, target, method="gradcam", normalize="minmax")
    assert (cameras > 0).float().mean() > 0.5 and (gradcam > 0).float().mean() > 0.5
    assert (_high_frequency_share(cameras) > 2 * _high_frequency_share(gradcam)).all()


def test_cameras_shape_batching_determinism_and_regressor():
    from qbench.explain.cameras import scale_factors

    assert [round(224 * f) for f in scale_factors()] == list(range(224, 1000, 100))
    model, x = tiny_cnn(), tiny_images(3, seed=2)
    target = torch.tensor([2, 1, 0])
    batch = explain(model, x, target, method="cameras", num_scales=3, batch_size=2)
    assert batch.shape == (3, 32, 32)
    single = torch.cat([explain(model, x[i:i + 1], target[i:i + 1], method="cameras",
                                num_scales=3) for i in range(3)])
    torch.testing.assert_close(batch, single, rtol=1e-5, atol=1e-6)
    assert torch.equal(batch, explain(model, x, target, method="cameras", num_scales=3,
                                      batch_size=2))
    chunked = explain(model, x, target, method="cameras", num_scales=3, channel_chunk=5)
    torch.testing.assert_close(chunked, batch, rtol=1e-5, atol=1e-6)
    up = explain(tiny_regressor(), x, method="cameras", num_scales=2)
    down = explain(tiny_regressor(), x, lambda out: -out, method="cameras", num_scales=2)
    assert up.shape == (3, 32, 32)
    # evidence raising or lowering the score: one of the two is non-zero for every image
    assert ((up.amax((1, 2)) == 1) | (down.amax((1, 2)) == 1)).all()


class _ScaleSensitive(nn.Module):
    """Predicts class 0 whenever the input is wider than 50 px (so scales disagree)."""

    def __init__(self):
        super().__init__()
        self.net = tiny_cnn(seed=0)
        self.cam_layer = self.net.cam_layer

    def forward(self, x):
        out = self.net(x)
        if x.shape[-1] > 50:
            out = out + torch.tensor([100.0, 0.0, 0.0])
        return out


def test_cameras_only_agreeing_scales_drops_scales_whose_top1_changed():
    from qbench.explain.cameras import cameras_maps, scale_factors

    model, x = _ScaleSensitive(), tiny_images(2)
    target = torch.tensor([2, 2])
    assert (model(x).argmax(1) == 1).all()
    factors = scale_factors(4)  # sizes 32, 46, 60, 74: the last two predict class 0
    kept = [f for f in factors if round(32 * f) <= 50]
    filtered = cameras_maps(model, x, target, scales=factors, only_agreeing_scales=True)
    expected = cameras_maps(model, x, target, scales=kept)
    torch.testing.assert_close(filtered, expected)
    assert not torch.allclose(filtered, cameras_maps(model, x, target, scales=factors))


def test_library_functions_accept_target_none(model, images):
    """``None`` = the predicted class (classifier) or the score itself (regressor)."""
    from qbench.explain.cam import score_cam
    from qbench.explain.cameras import cameras_maps

    predicted = model(images).argmax(1)
    torch.testing.assert_close(cam_maps(model, images, None, create_graph=False).maps,
                               cam_maps(model, images, predicted, create_graph=False).maps)
    torch.testing.assert_close(score_cam(model, images, None).maps,
                               score_cam(model, images, predicted).maps)
    torch.testing.assert_close(cameras_maps(model, images, None, num_scales=2),
                               cameras_maps(model, images, predicted, num_scales=2))
    reg = tiny_regressor()
    res = cam_maps(reg, images, None, method="hirescam", layer="features.3",
                   detach_weights=True)
    assert res.output.shape == (2,) and res.output.requires_grad
    (res.maps.mean() + res.output.mean()).backward()  # one forward, two losses
    assert reg.features[0].weight.grad.abs().sum() > 0


def test_frozen_backbone_below_the_layer(images):
    """Maps exist when no parameter below the layer requires grad; a map loss still reaches
    the trainable layers above it (through ∂y/∂A)."""
    model = tiny_cnn()
    reference = explain(model, images, 2, method="gradcampp", layer="features.3")
    for p in model.features[:4].parameters():
        p.requires_grad_(False)
    torch.testing.assert_close(
        explain(model, images, 2, method="gradcampp", layer="features.3"), reference)
    res = cam_maps(model, images, torch.tensor([2, 2]), layer="features.3", method="gradcampp")
    res.maps.mean().backward()
    assert model.features[6].weight.grad.abs().sum() > 0
    assert model.features[0].weight.grad is None


def test_known_answers_on_the_layer_before_global_pooling(model, images):
    """Before global average pooling and a linear head, ∂y_c/∂A_k = w_ck / (h·w) everywhere,
    so Grad-CAM is Zhou et al.'s CAM Σ_k w_ck A_k / (h·w), and HiResCAM and XGradCAM give the
    same normalised map."""
    target = torch.tensor([2, 0])
    res = cam_maps(model, images, target, create_graph=False, normalize=None)
    store = {}
    handle = model.cam_layer.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    with torch.no_grad():
        model(images)
    handle.remove()
    w = model.head.weight[target]  # N×K
    cam = (w[:, :, None, None] * store["a"]).sum(1) / (8 * 8)
    torch.testing.assert_close(res.raw, cam)
    gradcam = explain(model, images, target, method="gradcam")
    for other in ("hirescam", "xgradcam"):
        torch.testing.assert_close(explain(model, images, target, method=other), gradcam)
