"""``--device`` is accepted by every command and study that computes, validated with one clear
message, and reaches the models and tensors. CPU only: the device that proves a tensor moved is
``meta`` (shapes without data), and recorders stop each run at its first use of the device."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import qbench.rankiqa.metric  # noqa: F401  binds the real qbench.models.load before tests patch it
from qbench import device as qdevice
from qbench.cli import cli

ROOT = Path(__file__).resolve().parents[1]

# commands that run no model and move no tensor to a device (listings, reports, checks)
NO_COMPUTE = {"data list", "data show", "corrupt list", "metrics list", "leaderboard show",
              "report", "doctor", "zoo list", "zoo info", "marking list", "study list",
              "study run"}  # study run passes its options to the study's own --device
KNOWN_GAPS: set[str] = set()  # computing commands without --device (none)
STUDIES = ("rankiqa", "explainers", "quality_vs_accuracy", "marked_models")


class Stop(Exception):
    """Raised by a recorder once it has seen what it came for, so nothing heavy runs."""


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), cmd


def _recorder(seen: dict, key: str = "device"):
    def record(*args, **kwargs):
        seen["device"] = kwargs.get(key)
        raise Stop
    return record


def _stop_at_forward(model: nn.Module, seen: dict) -> nn.Module:
    """Record where the first forward's input and the parameters are, then stop."""
    def hook(module, inputs):
        seen["input"] = inputs[0].device.type
        seen["params"] = next(module.parameters()).device.type
        raise Stop
    model.register_forward_pre_hook(hook)
    return model


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# ---------------------------------------------------------------- the shared check


def test_cuda_without_a_gpu_is_one_clear_error(no_cuda):
    with pytest.raises(qdevice.DeviceError,
                       match=r"--device cuda asked but torch.cuda.is_available\(\) is False"):
        qdevice.resolve_device("cuda")


def test_a_missing_cuda_index_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(qdevice.DeviceError, match="only 1 CUDA device"):
        qdevice.resolve_device("cuda:3")


def test_cpu_and_meta_pass_and_nonsense_is_refused():
    assert qdevice.check_device("cpu") == "cpu"
    assert qdevice.check_device("meta") == "meta"
    with pytest.raises(qdevice.DeviceError, match="'gpu0' is not a torch device"):
        qdevice.resolve_device("gpu0")


# ---------------------------------------------------------------- every entry point has it


def test_every_computing_command_takes_a_validated_device_option():
    seen = dict(_commands(cli))
    assert set(seen) >= NO_COMPUTE | KNOWN_GAPS, "a listed command no longer exists"
    missing = []
    for path, cmd in seen.items():
        if path in NO_COMPUTE | KNOWN_GAPS:
            continue
        opt = next((p for p in cmd.params if p.name == "device"), None)
        if opt is None or opt.default != "cpu" or opt.callback is not qdevice._click_callback:
            missing.append(path)
    assert not missing, f"commands without the validated --device (default cpu): {missing}"


def test_marking_train_takes_device():
    assert any(p.name == "device" for p in dict(_commands(cli))["marking train"].params)


def test_an_unavailable_device_stops_a_command_before_any_work(no_cuda, monkeypatch):
    import qbench.rankiqa.pipeline as pipeline

    monkeypatch.setattr(pipeline, "ranked_split", _recorder({}))  # would be the first work
    result = CliRunner().invoke(cli, ["rankiqa", "train", "--device", "cuda"])
    assert result.exit_code == 2
    assert "torch.cuda.is_available() is False" in result.output
    assert not isinstance(result.exception, Stop)


def _run_study(name: str):
    module = _load_study(name)
    return module.main(module.STUDY)


def _load_study(name: str):
    spec = importlib.util.spec_from_file_location(f"study_{name}", ROOT / "studies" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_takes_device_and_refuses_an_unavailable_one(study, no_cuda, monkeypatch,
                                                                 capsys):
    module = _load_study(study)

    def main():
        return module.main(module.STUDY)

    monkeypatch.setattr(sys, "argv", [f"{study}.py", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0 and "--device" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", [f"{study}.py", "--device", "cuda"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def test_study_run_refuses_an_unavailable_device_through_the_studys_own_option(no_cuda):
    result = CliRunner().invoke(cli, ["study", "run", "rankiqa", "--device", "cuda"])
    assert result.exit_code == 2


# ---------------------------------------------------------------- the CLI passes it on


def _png(tmp_path: Path) -> str:
    from PIL import Image

    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    return str(path)


CLI_CASES = {
    # command line (after `qbench`) -> (module, attribute reached with device=...)
    "aligned train": (["aligned", "train"], "qbench.metrics.aligned", "train_tgiqa"),
    "bench corrupt": (["bench", "corrupt"], "qbench.bench.corrupt", "run_speed"),
    "bench corrupt --fidelity": (["bench", "corrupt", "--fidelity"], "qbench.bench.corrupt",
                                 "run_fidelity"),
    "bench score": (["bench", "score"], "qbench.bench.score", "run"),
    "bench scale": (["bench", "scale"], "qbench.bench.scale", "run"),
    "bench explain": (["bench", "explain"], "qbench.bench.explain", "run"),
    "bench rankiqa": (["bench", "rankiqa"], "qbench.bench.rankiqa", "run"),
    "run demo": (["run", "demo"], "qbench.demo", "run_demo"),
    "zoo train": (["zoo", "train", "scenes-vgg-s-s0"], "qbench.models.zoo", "train_entry"),
    "zoo verify": (["zoo", "verify", "scenes-vgg-s-s0"], "qbench.models.zoo", "verify_entry"),
    "corrupt preview": (["corrupt", "preview", "{png}"], "qbench.corrupt.preview", "preview"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_command_passes_device_on(case, monkeypatch, tmp_path):
    args, module, attr = CLI_CASES[case]
    seen: dict = {}
    monkeypatch.setattr(importlib.import_module(module), attr, _recorder(seen))
    args = [a.replace("{png}", _png(tmp_path)) for a in args]
    result = CliRunner().invoke(cli, [*args, "--device", "meta"])
    assert isinstance(result.exception, Stop), result.output
    assert seen["device"] == "meta"


@pytest.mark.parametrize("args", [["rankiqa", "finetune"], ["rankiqa", "eval"]])
def test_rankiqa_commands_load_the_checkpoint_onto_the_device(args, monkeypatch):
    import qbench.models as models

    seen: dict = {}
    monkeypatch.setattr(models, "load", _recorder(seen, key="map_location"))
    monkeypatch.setattr(models, "info", lambda name: None)  # "m" passes the early name check
    result = CliRunner().invoke(cli, [*args, "--name" if args[1] == "eval" else "--from",
                                      "x.pt", "--device", "meta"])
    assert isinstance(result.exception, Stop), result.output
    assert seen["device"] == "meta"


def test_rankiqa_train_command_trains_on_the_device(monkeypatch):
    import qbench.rankiqa.pipeline as pipeline
    import qbench.rankiqa.train as train

    seen: dict = {}
    monkeypatch.setattr(pipeline, "ranked_split", lambda *a, **k: SimpleNamespace(train=None))
    monkeypatch.setattr(train, "train_ranking", _recorder(seen))
    result = CliRunner().invoke(cli, ["rankiqa", "train", "--device", "meta"])
    assert isinstance(result.exception, Stop), result.output
    assert seen["device"] == "meta"


@pytest.mark.parametrize("command", ["add", "run"])
def test_leaderboard_scores_on_the_device(command, monkeypatch, tmp_path):
    import qbench.cli as qcli
    from qbench.leaderboard.board import Leaderboard

    seen: dict = {}
    monkeypatch.setattr(qcli, "_testset", lambda *a, **k: None)
    monkeypatch.setattr(Leaderboard, "admit", lambda self, spec: {
        "info": {"name": "toy"}, "probe": {"checks": []}})
    monkeypatch.setattr(Leaderboard, "run", _recorder(seen))
    extra = ["toy"] if command == "add" else ["--metrics", "entries"]
    result = CliRunner().invoke(cli, ["leaderboard", command, *extra, "--dir", str(tmp_path),
                                      "--device", "meta"])
    assert isinstance(result.exception, Stop), result.output
    assert seen["device"] == "meta"


@pytest.mark.parametrize("study,module,attr", [
    ("rankiqa", "qbench.rankiqa.experiment", "run"),
    ("quality_vs_accuracy", "qbench.causal.sweep", "run"),
])
def test_study_passes_device_on(study, module, attr, monkeypatch, tmp_path):
    seen: dict = {}
    monkeypatch.setattr(importlib.import_module(module), attr, _recorder(seen))
    monkeypatch.setattr(sys, "argv", [f"{study}.py", "--device", "meta", "--out", str(tmp_path)])
    with pytest.raises(Stop):
        _run_study(study)
    assert seen["device"] == "meta"


def test_explainers_study_puts_images_and_models_on_the_device(monkeypatch, tmp_path):
    import qbench.data as data
    import qbench.models as models

    scenes = data.ClassificationSet(
        name="scenes", split="test", item_ids=[str(i) for i in range(8)],
        array=np.zeros((8, 8, 8, 3), np.uint8), labels=np.zeros(8, np.int64), classes=["a"],
        masks=np.zeros((8, 8, 8), np.uint8))
    monkeypatch.setattr(data, "load", lambda *a, **k: scenes)
    seen: dict = {}
    monkeypatch.setattr(models, "load", _recorder(seen, key="map_location"))
    monkeypatch.setattr(models, "info", lambda name: None)  # "m" passes the early name check
    monkeypatch.setattr(sys, "argv", ["explainers.py", "--device", "meta", "--images", "2",
                                      "--models", "m", "--out", str(tmp_path)])
    with pytest.raises(Stop):
        _run_study("explainers")
    assert seen["device"] == "meta"


# ---------------------------------------------------------------- the library moves tensors


def _tiny_ranked():
    from qbench.rankiqa.ranked import RankedSet

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 1, 3, 3, 16, 16), dtype=torch.uint8, generator=g)
    return RankedSet(images, ["a", "b"], ["t"], [0, 1, 2])


def _tiny_model(seen: dict) -> nn.Module:
    from qbench.rankiqa.train import new_model

    return _stop_at_forward(new_model((2, 2, 2, 2), seed=0), seen)


def test_rankiqa_ranking_trains_model_and_batches_on_the_device():
    from qbench.rankiqa.train import RankConfig, train_ranking

    seen: dict = {}
    cfg = RankConfig(steps=1, sources=1, crop=8, widths=(2, 2, 2, 2))
    with pytest.raises(Stop):
        train_ranking(_tiny_ranked(), cfg, model=_tiny_model(seen), device="meta")
    assert seen == {"input": "meta", "params": "meta"}


def test_rankiqa_finetune_and_scoring_run_on_the_device(monkeypatch):
    import qbench.rankiqa.train as train
    from qbench.rankiqa.targets import TargetSet

    g = torch.Generator().manual_seed(0)
    ts = TargetSet([torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g)
                    for _ in range(4)], np.linspace(0, 1, 4), ["a", "a", "b", "b"],
                   ["d"] * 4, np.ones(4, int), "toy", "toy")
    cfg = train.FinetuneConfig(steps=1, batch=2, crop=8)
    seen: dict = {}
    with pytest.raises(Stop):  # calibrate_head scores through evaluate._forward first
        train.finetune(_tiny_model(seen), ts, cfg, device="meta")
    assert seen == {"input": "meta", "params": "meta"}
    seen.clear()
    monkeypatch.setattr(train, "calibrate_head", lambda *a, **k: None)
    with pytest.raises(Stop):  # the training loop itself
        train.finetune(_tiny_model(seen), ts, cfg, device="meta")
    assert seen == {"input": "meta", "params": "meta"}


def test_rankiqa_bench_runs_both_schemes_on_the_device(monkeypatch):
    import qbench.bench.rankiqa as bench
    import qbench.rankiqa.train as train

    ranked = _tiny_ranked()
    seen: dict = {}
    monkeypatch.setattr(bench, "ranked_split",
                        lambda *a, **k: SimpleNamespace(train=ranked, test=ranked))
    monkeypatch.setattr(bench, "new_model",
                        lambda widths, seed: _stop_at_forward(train.new_model((2, 2, 2, 2)),
                                                              seen))
    with pytest.raises(Stop):
        bench.run(n=3, steps=1, crop=8, device="meta")
    assert seen == {"input": "meta", "params": "meta"}


def test_tgiqa_training_runs_proxy_and_model_on_the_device(monkeypatch, tmp_path):
    import qbench.metrics.aligned as aligned

    proxy = tmp_path / "proxy.pt"
    proxy.write_bytes(b"not read: _load is replaced")
    loaded: dict = {}

    def fake_load(name, device):
        loaded["device"] = device
        return nn.Linear(1, 1), SimpleNamespace(name="proxy")

    x = torch.rand(4, 3, 8, 8)
    monkeypatch.setattr(aligned, "_load", fake_load)
    monkeypatch.setattr(aligned, "corrupted_split",
                        lambda *a, **k: (x, torch.zeros(4, dtype=torch.long), []))
    monkeypatch.setattr(aligned, "proxy_targets",
                        lambda *a, **k: (torch.full((4,), 0.5), torch.ones(4)))
    seen: dict = {}
    monkeypatch.setattr(aligned, "tgiqa_cnn",
                        lambda widths: _stop_at_forward(aligned.TGIQANet((2, 2, 2, 2)), seen))
    cfg = aligned.TrainConfig(proxy=str(proxy), n_train=4, n_val=4, epochs=1, batch_size=2)
    with pytest.raises(Stop):
        aligned.train_tgiqa(cfg, out=tmp_path, progress=False, device="meta")
    assert loaded["device"] == "meta"
    assert seen == {"input": "meta", "params": "meta"}


def test_tgiqa_proxy_targets_feed_the_proxy_on_its_device():
    from qbench.metrics.aligned import proxy_targets

    seen: dict = {}
    proxy = _stop_at_forward(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).to("meta"), seen)
    with pytest.raises(Stop):
        proxy_targets(proxy, torch.rand(2, 3, 2, 2), torch.zeros(2, dtype=torch.long))
    assert seen == {"input": "meta", "params": "meta"}


def test_corrupt_preview_corrupts_on_the_device(monkeypatch, tmp_path):
    import qbench.corrupt.preview as preview

    seen: dict = {}

    def record(x, name, severity, seed=0):
        seen["device"] = x.device.type
        raise Stop

    monkeypatch.setattr(preview, "apply", record)
    monkeypatch.setattr(preview, "to_uint8_array",  # the clean tile (no data on meta)
                        lambda img: np.zeros((*img.shape[-2:], 3), np.uint8))
    with pytest.raises(Stop):
        preview.preview(torch.rand(3, 16, 16), tmp_path / "p.png", ["gaussian_noise"], size=16,
                        device="meta")
    assert seen["device"] == "meta"


def test_explain_bench_puts_model_and_images_on_the_device():
    from qbench.bench.explain import _model_and_images

    net, _layer, images = _model_and_images("resnet18", 1, device="meta")
    assert images.device.type == "meta"
    assert next(net.parameters()).device.type == "meta"
