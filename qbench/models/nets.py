"""Small image classifiers for the 64x64 ``scenes`` task (and any size: they pool globally).

Every network takes Nx3xHxW float images in [0, 1] -- the project convention -- normalises
them inside (ImageNet mean/std, a fixed non-persistent buffer, so checkpoints hold only
learned weights) and returns N x ``num_classes`` logits. Each exposes ``cam_layer``: the
module whose output (the last convolutional feature map, before global pooling) Grad-CAM and
the other CAM methods read.

Architectures (all well under 1M parameters, so a checkpoint is < 5 MB). Their defaults are
frozen: checkpoints record only the kwargs they were built with, so changing a default would
break them -- add a kwarg instead:

* ``resnet-s`` -- a small ResNet: strided stem, three stages of basic residual blocks;
* ``vgg-s`` -- VGG-style stacks of 3x3 conv + BN + ReLU separated by max pooling;
* ``mobilenet-s`` -- MobileNet-v1 style depthwise-separable convolutions;
* ``proxy-cnn`` -- a plain 5x5-conv network used as the *proxy* classifier behind
  task-aligned quality metrics; it is deliberately none of the evaluated task models.
"""

from __future__ import annotations

import torch
from torch import nn

from qbench.models.registry import register

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """[0, 1] RGB -> (x - mean) / std, with constants that are not saved in the state_dict."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Classifier(nn.Module):
    """normalise -> ``features`` -> global average pool -> linear; ``cam_layer`` = last block."""

    def __init__(self, features: nn.Sequential, width: int, num_classes: int) -> None:
        super().__init__()
        self.normalize = Normalize()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    @property
    def cam_layer(self) -> nn.Module:
        """The last convolutional block: its output is the map CAM methods weight."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(self.normalize(x))), 1))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


@register("resnet-s")
def resnet_s(num_classes: int = 10, widths: tuple[int, ...] = (48, 96, 96)) -> Classifier:
    """Stem (3x3, stride 2, 24 ch) then one basic block per width; the first two halve the
    resolution, so the CAM layer is 8x8 on 64x64 inputs."""
    layers: list[nn.Module] = [conv_bn(3, 24, 3, 2)]
    cin = 24
    for k, w in enumerate(widths):
        layers.append(BasicBlock(cin, w, stride=2 if k < 2 else 1))
        cin = w
    return Classifier(nn.Sequential(*layers), cin, num_classes)


@register("vgg-s")
def vgg_s(num_classes: int = 10, widths: tuple[int, ...] = (48, 96)) -> Classifier:
    """Strided stem + max pool, then [conv-conv] stages separated by max pooling (VGG style);
    the CAM layer is the last stage, 8x8 on 64x64 inputs."""
    layers: list[nn.Module] = [nn.Sequential(conv_bn(3, 24, 3, 2), nn.MaxPool2d(2))]
    cin = 24
    for k, w in enumerate(widths):
        stage: list[nn.Module] = [nn.MaxPool2d(2)] if k > 0 else []
        stage += [conv_bn(cin, w), conv_bn(w, w)]
        layers.append(nn.Sequential(*stage))
        cin = w
    return Classifier(nn.Sequential(*layers), cin, num_classes)


def separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 (stride) followed by pointwise 1x1, each with BN + ReLU."""
    return nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1))


@register("mobilenet-s")
def mobilenet_s(num_classes: int = 10,
                plan: tuple[tuple[int, int], ...] = ((48, 2), (48, 1), (96, 2), (96, 1),
                                                     (192, 1))) -> Classifier:
    """MobileNet-v1 style: strided stem, then (width, stride) depthwise-separable blocks."""
    layers: list[nn.Module] = [conv_bn(3, 24, 3, 2)]
    cin = 24
    for w, s in plan:
        layers.append(separable(cin, w, s))
        cin = w
    return Classifier(nn.Sequential(*layers), cin, num_classes)


@register("proxy-cnn")
def proxy_cnn(num_classes: int = 10, widths: tuple[int, ...] = (16, 32, 64)) -> Classifier:
    """Plain 5x5 convolutions, each stage strided, no residuals and no pooling layers."""
    layers: list[nn.Module] = []
    cin = 3
    for w in widths:
        layers.append(nn.Sequential(conv_bn(cin, w, 5, 2), conv_bn(w, w, 3)))
        cin = w
    return Classifier(nn.Sequential(*layers), cin, num_classes)
