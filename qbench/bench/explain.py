"""``qbench bench explain``: the explainers' cost against baselines measured in the same run.

Same model, same batch, alternating sides, the fastest of ``repeats`` timings counts:

* ``speedup_vs_gradcam_pkg``: batched Grad-CAM (qbench) vs pytorch-grad-cam's ``GradCAM`` on
  the same layer and targets (floor >= 1.5);
* ``overhead_vs_fwd_bwd``: Grad-CAM vs one plain forward + backward of the target logits to
  the input (floor <= 1.3);
* ``rise_overhead``: RISE with N masks vs the N masked forwards alone, in the same chunks
  (floor <= 1.2);
* ``deletion_speedup``: the batched deletion game vs a per-image loop that forwards one
  perturbed image per step, as the RISE reference evaluation does (floor >= 5).

The default model is the zoo's ``scenes-vgg-s-s0`` on 64×64 ``scenes`` test images; any
other model spec (``efficientnet-lite0``, ``torchvision:ARCH``, ``timm:NAME``, ``module:attr``,
see :mod:`qbench.models.specs`) gets the same images resized to its declared input size;
``model="resnet18"`` uses a seeded, randomly initialised torchvision ResNet-18 at 224 px.
For a zoo model, ``deletion_by_model`` repeats the deletion pair on the zoo's other two
architectures (the floor is checked on ``model``'s).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

FLOORS = {"speedup_vs_gradcam_pkg": (">=", 1.5), "overhead_vs_fwd_bwd": ("<=", 1.3),
          "rise_overhead": ("<=", 1.2), "deletion_speedup": (">=", 5.0)}
ZOO_ARCHITECTURES = ("scenes-vgg-s-s0", "scenes-resnet-s-s0", "scenes-mobilenet-s-s0")


def _best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _pair(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Fastest time of each side, the sides alternating so drifting load hits both."""
    ta, tb = [], []
    a(), b()  # warm-up (allocator, first-call costs)
    for _ in range(repeats):
        ta.append(_best(a, 1))
        tb.append(_best(b, 1))
    return min(ta), min(tb)


def _model_and_images(model: str, n: int, device: str = "cpu"
                      ) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    if model == "resnet18":
        import torchvision

        torch.manual_seed(0)
        net = torchvision.models.resnet18(num_classes=10).eval()
        images = torch.rand(n, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        return net.to(device), net.layer4, images.to(device)
    import qbench.data as data
    import qbench.models as models

    net, prov = models.load(model, map_location=device)  # any model spec
    images = data.load("scenes", split="test").batch(range(n))
    size = prov.extra.get("input_size")
    if size and size != images.shape[-1]:  # e.g. 224 px for ImageNet models
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                                 antialias=True, align_corners=False).clamp(0, 1)
    return net.to(device), net.cam_layer, images.to(device)


def _deletion_pair(net: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: torch.Tensor,
                   repeats: int) -> tuple[float, float, float]:
    """(batched seconds, per-image loop seconds, max |AUC difference|) of the deletion game."""
    from qbench.explain.evaluate.faithfulness import deletion_auc, make_substitute, pixel_ranks

    n, _, h, w = x.shape
    step = min(h, w)

    def batched():
        return deletion_auc(net, x, maps, target, substitute="zero", step=step)

    def per_image_loop():
        sub = make_substitute(x, "zero", 0)
        ranks = pixel_ranks(maps).view(n, 1, h, w)
        ks = [*range(0, h * w, step), h * w]
        aucs = []
        with torch.no_grad():
            for i in range(n):
                scores = []
                for k in ks:
                    changed = (ranks[i] < k).float()
                    img = x[i] * (1 - changed) + sub[i] * changed
                    scores.append(net(img[None]).softmax(1)[0, target[i]].item())
                aucs.append(float(torch.trapezoid(torch.tensor(scores),
                                                  torch.tensor(ks) / (h * w))))
        return aucs

    reference = per_image_loop()
    agree = float((torch.as_tensor(batched()).cpu() - torch.tensor(reference)).abs().max())
    t_b, t_loop = _pair(batched, per_image_loop, repeats)
    return t_b, t_loop, agree


def run(model: str = "scenes-vgg-s-s0", n: int = 16, n_masks: int = 500, rise_images: int = 4,
        repeats: int = 3, progress: bool = True, device: str = "cpu") -> dict:
    """Measure the four ratios; returns them with the raw seconds and the floors (every side
    runs on ``device``)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from qbench.explain import explain
    from qbench.explain.rise import rise_masks

    net, layer, x = _model_and_images(model, n, device)
    with torch.no_grad():
        target = net(x).argmax(1)
    out: dict = {"model": model, "n_images": n, "image_size": x.shape[-1], "repeats": repeats,
                 "threads": torch.get_num_threads(), "device": device}

    # Grad-CAM: qbench vs pytorch-grad-cam vs a plain forward + backward
    package = GradCAM(model=net, target_layers=[layer])
    targets = [ClassifierOutputTarget(int(t)) for t in target]

    def qbench_gradcam():
        return explain(net, x, target, method="gradcam", layer=layer)

    def package_gradcam():
        return package(input_tensor=x, targets=targets)

    def forward_backward():
        xi = x.clone().requires_grad_(True)
        net(xi).gather(1, target[:, None]).sum().backward()
        net.zero_grad(set_to_none=True)

    t_q, t_pkg = _pair(qbench_gradcam, package_gradcam, repeats)
    _, t_fb = _pair(qbench_gradcam, forward_backward, repeats)
    out["seconds"] = {"gradcam": t_q, "gradcam_pkg": t_pkg, "forward_backward": t_fb}
    out["speedup_vs_gradcam_pkg"] = t_pkg / t_q
    out["overhead_vs_fwd_bwd"] = t_q / t_fb
    if progress:
        print(f"  Grad-CAM {t_q:.3f} s, pytorch-grad-cam {t_pkg:.3f} s, "
              f"forward+backward {t_fb:.3f} s", flush=True)

    # RISE vs the same masked forwards alone
    xr, tr = x[:rise_images], target[:rise_images]
    batch = 256

    def rise():
        return explain(net, xr, tr, method="rise", n_masks=n_masks, batch_size=batch)

    def masked_forwards():
        masks = rise_masks(n_masks, xr.shape[-2], xr.shape[-1], 7, 0.5, 0).to(xr.device)
        per_chunk = max(1, batch // xr.shape[0])
        with torch.no_grad():
            for s in range(0, n_masks, per_chunk):
                m = masks[s:s + per_chunk]
                net((m[:, None, None] * xr[None]).flatten(0, 1))

    t_rise, t_fwd = _pair(rise, masked_forwards, repeats)
    out["seconds"].update({"rise": t_rise, "rise_forwards": t_fwd})
    out["rise_overhead"] = t_rise / t_fwd
    if progress:
        print(f"  RISE {t_rise:.3f} s vs its {n_masks} x {rise_images} masked forwards "
              f"{t_fwd:.3f} s", flush=True)

    # deletion game: batched vs a per-image, per-step loop (same substitute, step and order)
    t_b, t_loop, agree = _deletion_pair(net, x, qbench_gradcam(), target, repeats)
    out["seconds"].update({"deletion_batched": t_b, "deletion_loop": t_loop})
    out["deletion_speedup"] = t_loop / t_b
    out["deletion_max_abs_difference"] = agree
    if progress:
        print(f"  deletion AUC batched {t_b:.3f} s vs per-image loop {t_loop:.3f} s "
              f"(max |AUC difference| {agree:.2e})", flush=True)
    # the same pair on the zoo's other architectures: the ratio depends on how much of a
    # batch-1 forward is fixed per-layer cost rather than arithmetic
    out["deletion_by_model"] = {}
    for other in (ZOO_ARCHITECTURES if model in ZOO_ARCHITECTURES else ()):
        if other == model:
            continue
        o_net, o_layer, o_x = _model_and_images(other, n, device)
        with torch.no_grad():
            o_target = o_net(o_x).argmax(1)
        o_maps = explain(o_net, o_x, o_target, method="gradcam", layer=o_layer)
        ob, ol, _ = _deletion_pair(o_net, o_x, o_maps, o_target, repeats)
        out["deletion_by_model"][other] = {"batched": round(ob, 4), "loop": round(ol, 4),
                                           "speedup": round(ol / ob, 3)}
        if progress:
            print(f"  {other}: deletion AUC batched {ob:.3f} s vs per-image loop {ol:.3f} s",
                  flush=True)

    for key in FLOORS:
        out[key] = round(out[key], 3)
    out["floors"] = {k: f"{op} {v}" for k, (op, v) in FLOORS.items()}
    out["meets_floors"] = {k: (out[k] >= v if op == ">=" else out[k] <= v)
                           for k, (op, v) in FLOORS.items()}
    out["seconds"] = {k: round(v, 4) for k, v in out["seconds"].items()}
    return out
