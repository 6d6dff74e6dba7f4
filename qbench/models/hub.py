"""Pretrained torchvision classifiers, read from the torch hub cache only (never downloaded).

``pretrained("resnet18")`` builds the torchvision architecture and loads the weights file that
torchvision itself would have cached: ``$TORCH_HOME/hub/checkpoints/<file>`` (the file name is
the last part of the weights' URL, e.g. ``resnet18-f37072fd.pth``; ``torch.hub.get_dir()``
resolves ``$TORCH_HOME``). A missing file raises one :class:`ModelSpecError` (a
:class:`CheckpointError`) naming the path and how to obtain it. The returned model follows
qbench's conventions: it takes Nx3xHxW images in [0, 1], applies the weights' ImageNet
normalisation inside, returns logits, and exposes ``cam_layer`` (the last convolutional block)
for CAM methods.

``from_state_dict(arch, path)`` builds torchvision ``arch`` around a state_dict the user gives
(its class count read from the final layer); ``timm_model(name, path=None)`` does the same for
timm, and without a path looks for the file only in the Hugging Face / torch hub caches
(``HF_HUB_OFFLINE`` is set; nothing is downloaded). These are the ``torchvision:`` and
``timm:`` model specs of :mod:`qbench.models.specs`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.models.checkpoint import ModelSpecError
from qbench.models.nets import IMAGENET_MEAN, IMAGENET_STD, Normalize


class PretrainedClassifier(nn.Module):
    """A torchvision classifier behind a [0, 1] -> ImageNet normalisation."""

    def __init__(self, net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    @property
    def cam_layer(self) -> nn.Module:
        override = self.__dict__.get("_cam_layer")
        return override if override is not None else cam_layer_of(self.net)

    @cam_layer.setter
    def cam_layer(self, layer: nn.Module) -> None:
        # a reference, not a registered submodule; note that ``model.cam_layer = m`` goes
        # through nn.Module.__setattr__, which registers ``m``: call this setter directly
        # (``qbench.models.specs.set_cam_layer`` does)
        self.__dict__["_cam_layer"] = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def cam_layer_of(net: nn.Module) -> nn.Module:
    """The last convolutional block of common torchvision and timm classifiers."""
    if hasattr(net, "layer4"):  # ResNet, ResNeXt, Wide ResNet (torchvision and timm)
        return net.layer4
    if all(hasattr(net, a) for a in ("conv_head", "bn2", "global_pool")):
        return net.bn2  # timm EfficientNet family: conv_head -> bn2 (BN + act) -> pool
    info = getattr(net, "feature_info", None)  # timm: the last feature stage it declares
    if isinstance(info, list) and info and isinstance(info[-1], dict) and info[-1].get("module"):
        try:
            return net.get_submodule(info[-1]["module"])
        except AttributeError:
            pass
    if hasattr(net, "stages") and isinstance(net.stages, nn.Sequential):  # ConvNeXt, ...
        return net.stages[-1]
    if hasattr(net, "features"):  # VGG, MobileNet, EfficientNet, DenseNet, ConvNeXt, ...
        return net.features[-1] if isinstance(net.features, nn.Sequential) else net.features
    if hasattr(net, "trunk_output"):  # RegNet
        return net.trunk_output
    raise ModelSpecError(f"no known CAM layer for {type(net).__name__}; pass one explicitly")


def _weights(arch: str, weights: str):
    import torchvision.models as tvm

    try:
        enum = tvm.get_model_weights(arch)
    except (ValueError, KeyError):
        raise ModelSpecError(f"unknown torchvision classifier {arch!r}; known: "
                              f"{', '.join(tvm.list_models(module=tvm))}") from None
    try:
        return enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise ModelSpecError(f"{arch} has no weights {weights!r}; known: "
                              f"{', '.join(w.name for w in enum)}") from None


def expected_path(arch: str, weights: str = "DEFAULT") -> Path:
    """Where torchvision caches ``arch``'s ``weights``: ``<hub dir>/checkpoints/<file>``."""
    w = _weights(arch, weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name


def pretrained(arch: str, weights: str = "DEFAULT", map_location: str = "cpu"
               ) -> PretrainedClassifier:
    """torchvision ``arch`` with cached ``weights`` (eval mode); never downloads."""
    import torchvision.models as tvm

    w = _weights(arch, weights)
    path = expected_path(arch, weights)
    if not path.exists():
        raise ModelSpecError(
            f"pretrained weights for {arch} ({w}) not found at {path}; qbench never downloads: "
            f"fetch {w.url} into that folder (or run `python -c \"import torchvision; "
            f"torchvision.models.get_model('{arch}', weights='{w.name}')\"` once with network "
            f"access and the same TORCH_HOME)")
    net = tvm.get_model(arch, weights=None, num_classes=len(w.meta["categories"]))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:
        raise ModelSpecError(f"{path} is not a usable {arch} state_dict: "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from None
    t = w.transforms()
    mean = tuple(getattr(t, "mean", IMAGENET_MEAN))
    std = tuple(getattr(t, "std", IMAGENET_STD))
    return PretrainedClassifier(net, mean, std).eval()


def _final_out_features(state: dict[str, torch.Tensor]) -> int | None:
    """Rows of the last weight matrix (or 1x1 conv) in a state_dict: the class count."""
    for key in reversed(list(state)):
        v = state[key]
        if key.endswith("weight") and isinstance(v, torch.Tensor) and v.ndim >= 2:
            return int(v.shape[0])
    return None


def read_state_dict(path: str | Path, spec: str, how: str) -> dict[str, torch.Tensor]:
    """A state_dict from ``path`` (``state_dict``/``model`` wrappers and ``module.`` unwrapped);
    a missing or unreadable file is one :class:`ModelSpecError` naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelSpecError(f"{spec}: weights file {path} not found; {how}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = " ".join(str(exc).split())[:200]
        raise ModelSpecError(f"{spec}: {path} is not a readable state_dict: "
                              f"{type(exc).__name__}: {text}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ModelSpecError(f"{spec}: {path} does not hold a state_dict (a mapping of "
                              f"names to tensors); {how}")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _load_into(net: nn.Module, state: dict, spec: str, path: Path) -> None:
    try:
        net.load_state_dict(state)
    except Exception as exc:
        text = " ".join(str(exc).split())[:240]
        raise ModelSpecError(f"{spec}: {path} does not fit the architecture: "
                              f"{type(exc).__name__}: {text}") from None


def from_state_dict(arch: str, path: str | Path, spec: str = ""
                    ) -> tuple[PretrainedClassifier, dict[str, Any]]:
    """torchvision ``arch`` with the user's state_dict ``path``; returns the model (eval mode)
    and facts: num_classes (from the final layer, else the weights' metadata), classes (the
    weights' categories when the count matches), input_size, mean, std."""
    import torchvision.models as tvm

    spec = spec or f"torchvision:{arch}={path}"
    w = _weights(arch, "DEFAULT")
    state = read_state_dict(path, spec, "save one with "
                            "`torch.save(model.state_dict(), PATH)`")
    categories = list(w.meta.get("categories") or [])
    n = _final_out_features(state) or len(categories)
    kwargs: dict[str, Any] = {"num_classes": n}
    if arch in ("inception_v3", "googlenet"):
        kwargs["aux_logits"] = any(k.startswith(("AuxLogits.", "aux1.")) for k in state)
        kwargs["init_weights"] = False
    net = tvm.get_model(arch, weights=None, **kwargs)
    _load_into(net, state, spec, Path(path))
    facts = _tv_facts(w)
    facts.update(num_classes=n, classes=categories if n == len(categories) else None)
    model = PretrainedClassifier(net, facts["mean"], facts["std"]).eval()
    return model, facts


def _tv_facts(w) -> dict[str, Any]:
    t = w.transforms()
    crop = getattr(t, "crop_size", None)
    crop = crop[0] if isinstance(crop, list | tuple) else crop
    categories = list(w.meta.get("categories") or [])
    return {"mean": tuple(getattr(t, "mean", IMAGENET_MEAN)),
            "std": tuple(getattr(t, "std", IMAGENET_STD)),
            "input_size": int(crop) if crop else None,
            "num_classes": len(categories) or None, "classes": categories or None}


def torchvision_facts(arch: str, weights: str = "DEFAULT") -> dict[str, Any]:
    """What torchvision ``arch``'s cached weights are, without building it: the expected cache
    path, mean/std, input size, classes."""
    w = _weights(arch, weights)
    return {**_tv_facts(w), "weights": str(expected_path(arch, weights)), "url": w.url}


# ------------------------------------------------------------------------------------ timm

def _timm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network
    try:
        import timm
    except ImportError:
        raise ModelSpecError("timm: model specs need the package timm (`pip install timm`)"
                              ) from None
    return timm


def timm_facts(name: str) -> dict[str, Any]:
    """timm ``name``'s pretrained configuration and where its weights would be cached."""
    import difflib

    timm = _timm()
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" -- did you mean {' or '.join(repr(f'timm:{c}') for c in close)}?" \
            if close else ""
        raise ModelSpecError(f"unknown timm model {name!r}{hint}; `timm.list_models()` "
                              "lists them")
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    cfg = cfg.to_dict() if cfg is not None else {}
    size = cfg.get("input_size")
    return {"cfg": cfg, "mean": tuple(cfg.get("mean") or IMAGENET_MEAN),
            "std": tuple(cfg.get("std") or IMAGENET_STD),
            "input_size": int(size[-1]) if size else None,
            "num_classes": cfg.get("num_classes")}


def timm_cached_weights(name: str, cfg: dict[str, Any]) -> tuple[Path | None, str]:
    """The cached weights file of timm ``name`` (Hugging Face cache, then the torch hub cache),
    and where it was looked for (for the error message)."""
    from huggingface_hub import constants, try_to_load_from_cache

    looked = []
    repo = cfg.get("hf_hub_id")
    if repo:
        files = [cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename") else \
            ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
        for fname in files:
            found = try_to_load_from_cache(repo, fname)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found), ""
        looked.append(str(Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"))
    url = cfg.get("url")
    if url:
        p = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        if p.is_file():
            return p, ""
        looked.append(str(p))
    return None, " or ".join(looked) or "(timm declares no pretrained weights for it)"


def timm_model(name: str, path: str | Path | None = None, spec: str = ""
               ) -> tuple[PretrainedClassifier, dict[str, Any], Path]:
    """timm ``name`` (``pretrained=False``) with weights from ``path`` or the caches only."""
    spec = spec or f"timm:{name}" + (f"={path}" if path else "")
    timm = _timm()
    facts = timm_facts(name)
    if path is None:
        found, looked = timm_cached_weights(name, facts["cfg"])
        if found is None:
            raise ModelSpecError(
                f"{spec}: no cached weights, looked in {looked}; qbench never downloads: run "
                f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"` once "
                f"with network access, or give a file as timm:{name}=PATH")
        path = found
    path = Path(path).expanduser()
    if path.suffix == ".safetensors" or not path.is_file():
        state = read_state_dict(path, spec, "give a state_dict saved with "
                                "`torch.save(model.state_dict(), PATH)`")
    else:
        try:
            from timm.models import load_state_dict

            state = load_state_dict(str(path))
        except Exception:
            state = read_state_dict(path, spec, "give a state_dict saved with "
                                    "`torch.save(model.state_dict(), PATH)`")
    classifier = facts["cfg"].get("classifier")
    classifier = classifier[0] if isinstance(classifier, list | tuple) else classifier
    n = None
    if classifier and f"{classifier}.weight" in state:
        n = int(state[f"{classifier}.weight"].shape[0])
    n = n or _final_out_features(state) or facts["num_classes"]
    net = timm.create_model(name, pretrained=False, num_classes=n)
    _load_into(net, state, spec, path)
    facts["num_classes"] = n
    return PretrainedClassifier(net, facts["mean"], facts["std"]).eval(), facts, path
