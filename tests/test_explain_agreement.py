"""qbench's maps agree with pytorch-grad-cam's and captum's on the same model, layer and input,
and CAMERAS agrees with a one-image-at-a-time transcription of the reference algorithm."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from explain_models import tiny_cnn, tiny_images, tiny_regressor

import qbench.explain as explain
from qbench.explain import gradients as G
from qbench.explain.cameras import cameras_maps

pgc = pytest.importorskip("pytorch_grad_cam")
captum_attr = pytest.importorskip("captum.attr")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

GRAD_CAM_CLASSES = {
    "gradcam": "GradCAM", "hirescam": "HiResCAM", "gradcampp": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM", "layercam": "LayerCAM", "scorecam": "ScoreCAM",
}


@pytest.fixture(scope="module")
def setup():
    model, images = tiny_cnn(seed=2), tiny_images(2, seed=3)
    return model, images, torch.tensor([0, 2])


def _their_cam(name, model, layer, images, targets):
    cls = getattr(pgc, GRAD_CAM_CLASSES[name])
    with cls(model=model, target_layers=[layer]) as cam:
        if name == "scorecam":
            cam.batch_size = 7
        return torch.from_numpy(cam(input_tensor=images, targets=targets))


@pytest.mark.parametrize("name", list(GRAD_CAM_CLASSES))
@pytest.mark.parametrize("layer_name", ["features.3", "cam_layer"])
def test_cam_family_matches_pytorch_grad_cam(setup, name, layer_name):
    """Their convention: ReLU, per-image min-max, OpenCV bilinear resize, min-max again;
    ours with normalize="minmax" (bilinear upsampling commutes with the affine scaling)."""
    model, images, target = setup
    layer = model.get_submodule(layer_name)
    targets = [ClassifierOutputTarget(int(t)) for t in target]
    theirs = _their_cam(name, model, layer, images, targets)
    opts = {"mask_align_corners": True, "batch_size": 7} if name == "scorecam" else {}
    ours = explain(model, images, target, method=name, layer=layer, normalize="minmax", **opts)
    assert ours.shape == theirs.shape
    assert theirs.max() > 0.99  # a non-trivial map, so the comparison means something
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-5)


@pytest.mark.parametrize("name", ["gradcam", "hirescam", "layercam", "scorecam"])
def test_cam_family_matches_pytorch_grad_cam_on_a_regressor(name):
    """pytorch-grad-cam's advice for a regression output: a target returning the output."""
    model, images = tiny_regressor(seed=1), tiny_images(2, seed=4)
    layer = model.features[3]
    theirs = _their_cam(name, model, layer, images, [lambda out: out] * 2)
    opts = {"mask_align_corners": True} if name == "scorecam" else {}
    ours = explain(model, images, None, method=name, layer=layer, normalize="minmax", **opts)
    assert theirs.max() > 0.99
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-5)


def _captum(cls, model, **init):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input did not require gradients"
        return getattr(captum_attr, cls)(model, **init)


def _attribute(explainer, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return explainer.attribute(*args, **kwargs)


def test_gradient_matches_captum_saliency(setup):
    model, images, target = setup
    sal = _captum("Saliency", model)
    theirs = _attribute(sal, images, target=target, abs=False)
    torch.testing.assert_close(G.gradient_attributions(model, images, target), theirs)
    abs_theirs = _attribute(sal, images, target=target)  # abs=True: |∂y/∂x|
    torch.testing.assert_close(explain(model, images, target, method="gradient"),
                               abs_theirs.amax(1))


def test_gradient_x_input_matches_captum(setup):
    model, images, target = setup
    theirs = _attribute(_captum("InputXGradient", model), images, target=target)
    torch.testing.assert_close(G.gradient_x_input_attributions(model, images, target), theirs)
    torch.testing.assert_close(explain(model, images, target, method="gradient_x_input"),
                               theirs.sum(1))


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid", "riemann_left"])
def test_integrated_gradients_matches_captum(setup, rule):
    model, images, target = setup
    baseline = torch.full_like(images, 0.25)
    ig = _captum("IntegratedGradients", model)
    theirs = _attribute(ig, images, baselines=baseline, target=target, n_steps=12, method=rule)
    ours = G.integrated_gradients_attributions(model, images, target, baseline=0.25, steps=12,
                                               rule=rule, batch_size=5)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-8)


def test_integrated_gradients_matches_captum_on_a_regressor():
    model, images = tiny_regressor(seed=1), tiny_images(2, seed=4)
    theirs = _attribute(_captum("IntegratedGradients", model), images, n_steps=10)
    ours = G.integrated_gradients_attributions(model, images, lambda out: out, steps=10)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("magnitude", [False, True])
def test_smoothgrad_matches_captum_noise_tunnel(setup, magnitude):
    """Same seed → same noise: captum draws N(0, σ²) from the global RNG, qbench from a CPU
    generator seeded alike (one image, so captum's per-image noise is ours)."""
    model, images, target = setup
    x, t = images[:1], target[:1]
    ours = G.smoothgrad_attributions(model, x, t, samples=8, sigma=0.2, seed=11,
                                     magnitude=magnitude)
    tunnel = captum_attr.NoiseTunnel(_captum("Saliency", model))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        theirs = _attribute(tunnel, x, target=t, nt_type="smoothgrad", nt_samples=8,
                            stdevs=0.2, abs=magnitude)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-8)


def _cameras_reference(model, layer, image, cls, resolutions):
    """CAMERAS as the reference describes it, one image at a time: for each resolution a
    bicubic resize, a full backward pass from the one-hot logit, and backward hooks on the
    layer; then bilinear resizes to the base size, means, ReLU(Σ A⊙G), min-max."""
    store = {}
    fwd = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach()))
    bwd = layer.register_full_backward_hook(
        lambda m, gi, go: store.__setitem__("g", go[0].detach()))
    try:
        feats, grads = [], []
        for i, res in enumerate(resolutions):
            x = image if i == 0 else F.interpolate(image, (res, res), mode="bicubic",
                                                   align_corners=False)
            x = x.clone().requires_grad_(True)  # full backward hooks need a grad path
            logits = model(x)
            model.zero_grad()
            logits.backward(gradient=F.one_hot(torch.tensor([cls]), logits.shape[1]).float())
            base = resolutions[0]
            feats.append(F.interpolate(store["a"], (base, base), mode="bilinear",
                                       align_corners=False))
            grads.append(F.interpolate(store["g"], (base, base), mode="bilinear",
                                       align_corners=False))
    finally:
        fwd.remove()
        bwd.remove()
    sal = F.relu((torch.stack(feats).mean(0) * torch.stack(grads).mean(0)).sum(1))
    sal = sal - sal.min()
    return (sal / sal.max())[0]


def test_cameras_batched_matches_the_reference_algorithm():
    model, images, target = tiny_cnn(seed=0), tiny_images(2, seed=5), torch.tensor([2, 1])
    resolutions = [32, 46, 60]  # the reference's 224 + 100·i pattern, scaled to 32 px
    ours = cameras_maps(model, images, target, scales=[r / 32 for r in resolutions],
                        batch_size=1)
    for i in range(2):
        ref = _cameras_reference(model, model.cam_layer, images[i:i + 1], int(target[i]),
                                 resolutions)
        torch.testing.assert_close(ours[i], ref, rtol=1e-4, atol=1e-5)
