"""Sanity checks (Adebayo et al., NeurIPS 2018): a map that survives randomising the model's
parameters does not explain the model.

* :func:`parameter_layers` -- the modules that own parameters, input to output;
* :func:`randomized_models` -- deep copies of the model with layers re-drawn at random:
  ``cascading`` (output layer first, then each layer below it, cumulatively) or
  ``independent`` (one layer at a time). The original model is never modified;
* :func:`map_similarity` -- per image, Spearman rank correlation of the two maps with and
  without absolute values, SSIM and the Pearson correlation of their HOG features
  (``skimage.feature.hog``) after min-max normalisation to [0, 1];
* :func:`sanity_check` -- runs a method on the original and every randomised model and returns
  one row per (randomised layer, image). A trustworthy method's similarities fall towards 0.

A layer's parameters are re-drawn from U(−b, b) with b = 1/√fan_in (PyTorch's default scale for
convolutions and linear layers; fan_in = elements per output unit of the layer's weight, used
for its 1-d parameters too; a layer without a ≥2-d weight uses b = 1). Each layer draws from its
own generator seeded by (seed, layer position), so cascading and independent randomisation use
identical draws for the same layer. Buffers (BatchNorm running statistics) are kept.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import numpy as np
import torch
from scipy import stats as _st
from skimage.feature import hog
from skimage.metrics import structural_similarity
from torch import nn

from qbench.explain.evaluate.complexity import minmax


def parameter_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every module owning parameters directly, in definition order."""
    seen: set[int] = set()
    out = []
    for name, mod in model.named_modules():
        if id(mod) in seen:
            continue
        seen.add(id(mod))
        if any(True for _ in mod.parameters(recurse=False)):
            out.append((name, mod))
    return out


def randomize_layer_(module: nn.Module, seed: int) -> None:
    """Re-draw ``module``'s own parameters in place (see the module docstring)."""
    gen = torch.Generator().manual_seed(int(seed))
    params = dict(module.named_parameters(recurse=False))
    weight = next((p for p in params.values() if p.ndim >= 2), None)
    bound = 1.0 / math.sqrt(weight[0].numel()) if weight is not None else 1.0
    with torch.no_grad():
        for p in params.values():
            b = 1.0 / math.sqrt(p[0].numel()) if p.ndim >= 2 else bound
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1).mul_(b).to(p))


def _layer_seed(seed: int, position: int) -> int:
    # mixed, so that seed 0 / layer 0 does not replay torch's own seed-0 initialisation
    return int(np.random.SeedSequence([int(seed), position]).generate_state(1)[0])


def randomized_models(model: nn.Module, mode: str = "cascading", seed: int = 0
                      ) -> Iterator[tuple[str, nn.Module]]:
    """Yield (layer name, randomised deep copy) per step; see the module docstring.

    Cascading yields one copy, randomised a layer further at every step: use it before
    asking for the next. Independent yields a fresh copy per layer."""
    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode must be 'cascading' or 'independent', got {mode!r}")
    layers = parameter_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no parameters to randomise")
    positions = {name: i for i, (name, _) in enumerate(layers)}
    cascade = copy.deepcopy(model) if mode == "cascading" else None
    for name, _ in reversed(layers):
        if mode == "cascading":
            randomize_layer_(cascade.get_submodule(name), _layer_seed(seed, positions[name]))
            yield name, cascade
        else:
            copy_ = copy.deepcopy(model)
            randomize_layer_(copy_.get_submodule(name), _layer_seed(seed, positions[name]))
            yield name, copy_


def _hog(img: np.ndarray) -> np.ndarray:
    cell = max(2, min(img.shape) // 8)
    return hog(img, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
               feature_vector=True)


def _corr(fn, a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(fn(a, b)[0])


def map_similarity(a: torch.Tensor, b: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image ``spearman``, ``spearman_abs``, ``ssim`` and ``hog`` similarity of two map
    batches (N×H×W). NaN where a map is constant (no ranking, no gradient)."""
    a = torch.as_tensor(a).float().cpu()
    b = torch.as_tensor(b).float().cpu()
    if a.shape != b.shape:
        raise ValueError(f"map shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    na, nb = minmax(a).numpy().astype(np.float64), minmax(b).numpy().astype(np.float64)
    out = {k: np.full(a.shape[0], np.nan) for k in ("spearman", "spearman_abs", "ssim", "hog")}
    for i in range(a.shape[0]):
        x, y = a[i].flatten().numpy(), b[i].flatten().numpy()
        out["spearman"][i] = _corr(_st.spearmanr, x, y)
        out["spearman_abs"][i] = _corr(_st.spearmanr, np.abs(x), np.abs(y))
        if min(a.shape[1:]) >= 7:
            out["ssim"][i] = structural_similarity(na[i], nb[i], data_range=1.0)
        out["hog"][i] = _corr(_st.pearsonr, _hog(na[i]), _hog(nb[i]))
    return out


def _layer_name(model: nn.Module, layer) -> str | None:
    if layer is None or isinstance(layer, str):
        return layer
    for name, mod in model.named_modules():
        if mod is layer:
            return name
    raise ValueError("layer is not a submodule of the model")


def sanity_check(model: nn.Module, images: torch.Tensor, method: str, target=None,
                 layer=None, mode: str = "cascading", seed: int = 0, **options) -> list[dict]:
    """Rows ``{mode, layer, depth, image, spearman, spearman_abs, ssim, hog}``: similarity of
    ``method``'s map on the original model and after randomising up to / only ``layer``.

    The target is resolved once on the original model (the same class is explained
    throughout, as in the paper); ``layer`` may be a module or dotted name of the original.
    """
    from qbench.explain import explain, resolve_target

    tgt = resolve_target(model, images, target)
    name = _layer_name(model, layer)
    original = explain(model, images, tgt, method, name, **options)
    rows = []
    for depth, (lname, rmodel) in enumerate(randomized_models(model, mode, seed), start=1):
        rmap = explain(rmodel, images, tgt, method, name, **options)
        sim = map_similarity(original, rmap)
        for i in range(images.shape[0]):
            rows.append({"mode": mode, "layer": lname, "depth": depth, "image": i,
                         **{k: float(v[i]) for k, v in sim.items()}})
    return rows
