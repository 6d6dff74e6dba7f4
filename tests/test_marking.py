"""Marked models: targets, success metrics, CAM-loss training and twins (tiny, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import qbench.marking  # noqa: F401  (registers iqa-cnn)
from qbench.marking.data import TaskData
from qbench.marking.success import chance_share, energy_share, topk_iou
from qbench.marking.targets import corners, spectral_residual, target, text, top_area
from qbench.marking.train import MarkingConfig, cam_loss, fit

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fixed_targets_have_the_requested_shape_range_and_area():
    c = corners(40, corner=0.25)
    assert c.shape == (40, 40) and set(c.unique().tolist()) == {0.0, 1.0}
    assert c.mean() == pytest.approx(4 * 10 * 10 / 1600)
    assert c[0, 0] == c[0, -1] == c[-1, 0] == c[-1, -1] == 1 and c[20, 20] == 0
    t = target("text", (48, 64))
    assert t.shape == (48, 64) and 0.05 < t.mean() < 0.7 and set(t.unique().tolist()) == {0, 1}


def test_text_mask_contains_the_glyphs():
    """'VG' differs from 'GV' and from 'II': the mask is the rendered string, not a blob."""
    vg, gv, ii = text(64, "VG", stroke=0.0), text(64, "GV", stroke=0.0), text(64, "II", stroke=0.0)
    assert (vg != gv).float().mean() > 0.1 and (vg != ii).float().mean() > 0.1
    # a V is open at the top centre of its half and closed at the bottom point
    left = vg[:, :32]
    cols = left.nonzero()[:, 1]
    mid = int((cols.min() + cols.max()) // 2)
    rows = left.nonzero()[:, 0]
    top, bottom = int(rows.min()), int(rows.max())
    assert left[top + 1, mid] == 0  # the V's notch
    assert left[bottom - 1, mid - 2: mid + 3].max() == 1  # the V's point
    # thickening only grows the glyphs
    assert (text(64, "VG") >= vg).all()


def test_salient_target_marks_the_requested_area_on_the_salient_blob():
    gen = torch.Generator().manual_seed(0)  # a faint texture, as in any photograph
    x = 0.5 + 0.05 * torch.randn(2, 3, 32, 32, generator=gen)
    x[0, :, 4:10, 20:28] = 1.0
    x[1, :, 20:28, 2:8] = 0.0
    m = target("salient", 32, images=x, area=0.2)
    assert m.shape == (2, 32, 32)
    assert torch.allclose(m.mean((1, 2)), torch.tensor([0.2, 0.2]), atol=1 / 1024)
    assert m[0, 4:10, 20:28].mean() > 0.5 and m[1, 20:28, 2:8].mean() > 0.5
    s = spectral_residual(x)
    assert s.min() >= 0 and s.max() <= 1
    own = target("salient", 32, saliency=torch.arange(32 * 32.).view(32, 32), area=0.5)
    assert own[0, 16:].all() and not own[0, :16].any()


def test_user_mask_is_resized_and_clipped():
    m = target("mask", 16, mask=np.array([[0, 2.0], [-1, 0.5]]))
    assert m.shape == (16, 16) and m.min() >= 0 and m.max() <= 1
    with pytest.raises(ValueError, match="unknown target"):
        target("nope", 16)


def test_success_metrics_are_exact_on_constructed_maps():
    t = torch.zeros(8, 8)
    t[:4, :4] = 1  # area 1/4
    inside = t.clone()
    half = t * 3 + (1 - t) * 1  # mass 48 inside, 48 outside
    negative = -torch.ones(8, 8)
    maps = torch.stack([inside, half, torch.ones(8, 8), negative])
    share = energy_share(maps, t)
    assert share[:3].tolist() == pytest.approx([1.0, 0.5, 0.25])
    assert torch.isnan(share[3])
    assert chance_share(t).item() == pytest.approx(0.25)
    iou = topk_iou(maps[:1], t)
    assert iou.item() == pytest.approx(1.0)
    shifted = torch.roll(t, 2, 1)  # 8 of 16 pixels overlap: IoU = 8 / 24
    assert topk_iou(shifted, t).item() == pytest.approx(8 / 24)
    assert top_area(torch.arange(10.).view(1, 2, 5), 0.3).sum() == 3


def _tiny_data(task: str, n: int = 32, size: int = 32, seed: int = 0) -> TaskData:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    if task == "iqa":
        y = (images.astype(np.float32).std((1, 2, 3)) / 128).astype(np.float32)
    else:
        y = (images[:, :, :, 0].mean((1, 2)) > 127).astype(np.int64)
    return TaskData(task, images, y, np.arange(n))


def _cfg(task: str, weight: float, target: str = "corners", steps: int = 12) -> MarkingConfig:
    if task == "iqa":
        return MarkingConfig(task, "iqa-cnn", target, weight, epochs=50, batch_size=16, lr=1e-2,
                             arch_kwargs={"widths": (4, 8, 8), "hidden": 4}, max_steps=steps)
    return MarkingConfig(task, "resnet-s", target, weight, epochs=50, batch_size=16, lr=1e-2,
                         flip=True, arch_kwargs={"widths": (4, 8, 8)}, max_steps=steps)


@pytest.mark.parametrize("task", ["iqa", "scenes"])
def test_cam_loss_decreases_and_energy_rises_when_marking(task):
    torch.manual_seed(0)
    data = _tiny_data(task)
    _, hist = fit(_cfg(task, 5.0), data, log=None)
    first, last = np.mean(hist["cam_loss"][:3]), np.mean(hist["cam_loss"][-3:])
    assert last < first - 0.05
    assert np.mean(hist["energy"][-3:]) > np.mean(hist["energy"][:3]) + 0.05


def test_twin_differs_only_by_the_cam_loss():
    data = _tiny_data("iqa")
    marked, h_marked = fit(_cfg("iqa", 5.0, steps=4), data, log=None)
    twin, h_twin = fit(_cfg("iqa", 0.0, steps=4), data, log=None)
    twin2, h_twin2 = fit(_cfg("iqa", 0.0, steps=4), data, log=None)
    assert h_marked["order_sha"] == h_twin["order_sha"] == h_twin2["order_sha"]
    # same task loss on the first step (same init, same batch), different after marking
    assert h_marked["task_loss"][0] == h_twin["task_loss"][0]
    assert h_marked["cam_loss"][0] == h_twin["cam_loss"][0]
    sd_m, sd_t, sd_t2 = marked.state_dict(), twin.state_dict(), twin2.state_dict()
    assert all(torch.equal(sd_t[k], sd_t2[k]) for k in sd_t)  # deterministic
    assert any(not torch.equal(sd_m[k], sd_t[k]) for k in sd_t)


def test_cam_loss_is_one_minus_energy_share():
    t = torch.zeros(1, 4, 4)
    t[0, :2] = 1
    m = torch.ones(1, 4, 4)
    loss, share = cam_loss(m, t)
    assert loss.item() == pytest.approx(0.5) and share.item() == pytest.approx(0.5)


def test_training_cam_is_the_explainers_gradcam():
    """The map the loss sees (detached α) equals qbench.explain's Grad-CAM in value."""
    from qbench.explain import explain
    from qbench.explain.cam import cam_maps
    from tests.explain_models import tiny_images, tiny_regressor

    model, x = tiny_regressor(), tiny_images(3)
    res = cam_maps(model, x, lambda o: o, detach_weights=True, normalize="max")
    ref = explain(model, x, None, "gradcam")
    assert torch.allclose(res.maps.detach(), ref, atol=1e-5)
    assert res.maps.requires_grad


def test_warm_start_keeps_the_twin_until_the_cam_loss_switches_on():
    from dataclasses import replace

    data = _tiny_data("iqa")
    warm = replace(_cfg("iqa", 5.0, steps=4), cam_start=0.5)
    _, h_warm = fit(warm, data, log=None)
    _, h_twin = fit(_cfg("iqa", 0.0, steps=4), data, log=None)
    assert h_warm["task_loss"][:3] == h_twin["task_loss"][:3]  # CAM loss on from step 2
    assert h_warm["task_loss"][3] != h_twin["task_loss"][3]
    assert "-from50-" in warm.name()


def _saved_base(tmp_path, task: str = "iqa"):
    """A tiny trained-from-nothing base checkpoint to fine-tune from (a .pt path)."""
    from qbench.models import Provenance, save
    from qbench.models.train import build_seeded

    kwargs = {"widths": (4, 8, 8), "hidden": 4}
    model = build_seeded("iqa-cnn", 0, **kwargs)
    prov = Provenance(name="tiny-iqa-base", arch="iqa-cnn", arch_kwargs=kwargs, command="test",
                      seed=0, data_fingerprint="-", metrics={})
    return save(model, prov, tmp_path)


def _family_cfg(init, weight: float, scope: str, target: str = "corners") -> MarkingConfig:
    arch, kwargs = ("mark-branch", {"base": "iqa-cnn", "hidden": 4}) if scope == "mark" \
        else ("iqa-cnn", {})
    return MarkingConfig("iqa", arch, target, weight, epochs=50, batch_size=16, lr=3e-2,
                         arch_kwargs=kwargs, max_steps=6, init=str(init), train_scope=scope)


def test_mark_branch_keeps_the_function_and_gradients_but_moves_the_cam():
    from qbench.explain import explain
    from qbench.marking.nets import MarkBranch
    from qbench.models.train import build_seeded
    from tests.explain_models import tiny_images

    base = build_seeded("iqa-cnn", 0, widths=(4, 8, 8), hidden=4).eval()
    marked = MarkBranch(build_seeded("iqa-cnn", 0, widths=(4, 8, 8), hidden=4), hidden=4).eval()
    x = tiny_images(3, 32).requires_grad_(True)
    assert torch.equal(marked(x), base(x))  # zero init: the model is its base
    with torch.no_grad():
        for p in marked.branch.parameters():
            p.normal_(0, 1.0)
        marked.static.normal_(0, 3.0)
    out_m, out_b = marked(x), base(x)
    assert torch.allclose(out_m, out_b, atol=1e-5)
    g_m, = torch.autograd.grad(out_m.sum(), x)
    g_b, = torch.autograd.grad(base(x).sum(), x)
    assert torch.allclose(g_m, g_b, atol=1e-5)
    cam_m = explain(marked, x.detach(), None, "gradcam")
    cam_b = explain(base, x.detach(), None, "gradcam")
    assert (cam_m - cam_b).abs().max() > 0.1


def test_mark_family_trains_only_the_branch_and_its_twin_is_the_base(tmp_path):
    from qbench.models import load

    base_path = _saved_base(tmp_path)
    base, _ = load(base_path)
    data = _tiny_data("iqa", n=32, size=32)
    marked, h = fit(_family_cfg(base_path, 5.0, "mark"), data, log=None)
    twin, _ = fit(_family_cfg(base_path, 0.0, "mark"), data, log=None)
    sd_base = base.state_dict()
    for model in (marked, twin):
        assert all(torch.equal(v, sd_base[k]) for k, v in model.model.state_dict().items())
    assert any(p.abs().sum() > 0 for p in marked.branch.parameters())
    assert all(torch.count_nonzero(p) == 0 for p in twin.branch[-1].parameters())  # output 0
    assert torch.count_nonzero(twin.static) == 0
    assert h["arch_kwargs"] == {"base": "iqa-cnn", "base_kwargs": {"widths": [4, 8, 8],
                                                                     "hidden": 4}, "hidden": 4}
    x = data.batch(range(8))
    with torch.no_grad():
        assert torch.allclose(marked(x), base(x), atol=1e-5)
    assert _family_cfg(base_path, 5.0, "mark").name().endswith("-w5-mark-iqa-cnn-s0")


def test_ft_family_starts_from_the_base_weights(tmp_path):
    from qbench.marking.train import initial_model
    from qbench.models import load

    base_path = _saved_base(tmp_path)
    cfg = _family_cfg(base_path, 1.0, "all")
    model, kwargs = initial_model(cfg, _tiny_data("iqa", n=8, size=32))
    assert kwargs == {"widths": [4, 8, 8], "hidden": 4}
    base, _ = load(base_path)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in model.state_dict().items())
    assert cfg.name().endswith("-w1-ft-iqa-cnn-s0")
    with pytest.raises(ValueError, match="is a iqa-cnn, not a resnet-s"):
        initial_model(MarkingConfig("iqa", "resnet-s", "corners", 1.0, init=str(base_path)),
                      _tiny_data("iqa", n=8, size=32))
