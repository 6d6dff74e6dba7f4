"""Pretrained torchvision classifiers, read from the torch hub cache only (never downloaded).

``pretrained("resnet18")`` builds the torchvision architecture and loads the weights file that
torchvision itself would have cached: ``$TORCH_HOME/hub/checkpoints/<file>`` (the file name is
the last part of the weights' URL, e.g. ``resnet18-f37072fd.pth``; ``torch.hub.get_dir()``
resolves ``$TORCH_HOME``). A missing file raises one :class:`CheckpointError` naming the path
and how to obtain it. The returned model follows qbench's conventions: it takes Nx3xHxW images
in [0, 1], applies the weights' ImageNet normalisation inside, returns logits, and exposes
``cam_layer`` (the last convolutional block) for CAM methods.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from qbench.models.checkpoint import CheckpointError
from qbench.models.nets import IMAGENET_MEAN, IMAGENET_STD, Normalize


class PretrainedClassifier(nn.Module):
    """A torchvision classifier behind a [0, 1] -> ImageNet normalisation."""

    def __init__(self, net: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    @property
    def cam_layer(self) -> nn.Module:
        return cam_layer_of(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def cam_layer_of(net: nn.Module) -> nn.Module:
    """The last convolutional block of common torchvision classifiers."""
    if hasattr(net, "layer4"):  # ResNet, ResNeXt, Wide ResNet
        return net.layer4
    if hasattr(net, "features"):  # VGG, MobileNet, EfficientNet, DenseNet, ConvNeXt, ...
        return net.features[-1] if isinstance(net.features, nn.Sequential) else net.features
    if hasattr(net, "trunk_output"):  # RegNet
        return net.trunk_output
    raise CheckpointError(f"no known CAM layer for {type(net).__name__}; pass one explicitly")


def _weights(arch: str, weights: str):
    import torchvision.models as tvm

    try:
        enum = tvm.get_model_weights(arch)
    except (ValueError, KeyError):
        raise CheckpointError(f"unknown torchvision classifier {arch!r}; known: "
                              f"{', '.join(tvm.list_models(module=tvm))}") from None
    try:
        return enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise CheckpointError(f"{arch} has no weights {weights!r}; known: "
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
        raise CheckpointError(
            f"pretrained weights for {arch} ({w}) not found at {path}; qbench never downloads: "
            f"fetch {w.url} into that folder (or run `python -c \"import torchvision; "
            f"torchvision.models.get_model('{arch}', weights='{w.name}')\"` once with network "
            f"access and the same TORCH_HOME)")
    net = tvm.get_model(arch, weights=None, num_classes=len(w.meta["categories"]))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a usable {arch} state_dict: "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from None
    t = w.transforms()
    mean = tuple(getattr(t, "mean", IMAGENET_MEAN))
    std = tuple(getattr(t, "std", IMAGENET_STD))
    return PretrainedClassifier(net, mean, std).eval()
