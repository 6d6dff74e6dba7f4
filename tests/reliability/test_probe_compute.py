"""Issue 24, part B: defects a hostile-input probe found in scoring, corruption, the
leaderboard and the analyses. Each test reproduces one defect (it failed before the fix).

The plugins below are importable as ``tests.reliability.test_probe_compute:<Name>``, the way a
user's ``module:attr`` spec names a metric.
"""

from __future__ import annotations

import contextlib
import json
import random

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import qbench.corrupt as corrupt
from qbench.cli import cli
from qbench.engine import guard
from qbench.errors import QbenchError
from qbench.explain import explain
from qbench.leaderboard import testsets
from qbench.leaderboard.board import Leaderboard
from qbench.metrics import MetricInfo, create
from qbench.metrics.base import check_inputs

HERE = "tests.reliability.test_probe_compute"
TYPES = ["kadid:gaussian_blur", "kadid:white_noise", "kadid:jpeg"]


@pytest.fixture(autouse=True)
def _restore_global_state():
    """A failing test must not hand a vandalised torch to the next one."""
    dtype, grad, threads = torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads()
    rng, np_rng, py_rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    yield
    torch.set_default_dtype(dtype)
    torch.set_grad_enabled(grad)
    torch.set_num_threads(threads)
    torch.set_rng_state(rng)
    np.random.set_state(np_rng)
    random.setstate(py_rng)


def _tiny_embedded(n_refs: int = 3):
    return testsets.refs_kadid(n_refs=n_refs, size=48, levels=(1, 3, 5), types=TYPES)


def _image(n: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, text
    return text


# -- plugins ----------------------------------------------------------------------------------
class MineV1:
    info = MetricInfo("plugin:mine", "1.0", "FR", higher_is_better=False)

    def __call__(self, images, refs=None):
        return (images - refs).abs().mean(dim=(1, 2, 3)).double()


class MineV2:
    info = MetricInfo("plugin:mine", "2.0", "FR", higher_is_better=False)

    def __call__(self, images, refs=None):
        return (images - refs).pow(2).mean(dim=(1, 2, 3)).double()


class FakePSNR(MineV1):
    info = MetricInfo("pyiqa:psnr", "1", "FR", higher_is_better=False)


class Evolving(MineV1):
    """Its code (and version) changes between two sessions, under the same spec."""

    version = "1.0"

    def __init__(self) -> None:
        self.info = MetricInfo("plugin:evolving", Evolving.version, "FR", higher_is_better=False)


class Vandal:
    """Changes torch's (and Python's) global state on every call."""

    info = MetricInfo("plugin:vandal", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.set_num_threads(1)
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        return images.mean(dim=(1, 2, 3)).double()


class SlowAlone(MineV1):
    """Scores a batch at once, but is slow when asked to score one image again (the re-check)."""

    info = MetricInfo("plugin:slow-alone", "1", "FR", higher_is_better=False)

    def __call__(self, images, refs=None):
        if images.shape[0] == 1:
            import time

            time.sleep(0.5)
        return super().__call__(images, refs)


class ScalarForOne:
    """Returns a 0-d tensor for a batch of one image (``.squeeze()``)."""

    info = MetricInfo("plugin:scalar-for-one", "1", "NR", higher_is_better=True)

    def __call__(self, images, refs=None):
        return images.mean(dim=(1, 2, 3)).double().squeeze()


# -- 1. two metrics with one name --------------------------------------------------------------
def test_1_a_second_metric_with_the_same_name_is_refused_not_merged(tmp_path):
    board = Leaderboard(tmp_path)
    board.admit(f"{HERE}:MineV1")
    before = (tmp_path / "entries.json").read_bytes()
    with pytest.raises(QbenchError) as err:
        board.admit(f"{HERE}:MineV2")
    text = _one_line(err.value)
    assert "plugin:mine" in text and "MineV1" in text
    assert (tmp_path / "entries.json").read_bytes() == before
    assert board.entries()["plugin:mine"]["info"]["version"] == "1.0"


def test_1_a_plugin_cannot_take_the_name_of_a_builtin_metric(tmp_path):
    board = Leaderboard(tmp_path)
    with pytest.raises(QbenchError, match="pyiqa:psnr"):  # not even on an empty board
        board.admit(f"{HERE}:FakePSNR")
    board.admit("pyiqa:psnr")
    with pytest.raises(QbenchError) as err:
        board.admit(f"{HERE}:FakePSNR")
    _one_line(err.value)
    assert board.entries()["pyiqa:psnr"]["spec"] == "pyiqa:psnr"


def test_1_rows_of_another_version_are_kept_apart(tmp_path, monkeypatch):
    board = Leaderboard(tmp_path)
    spec = f"{HERE}:Evolving"
    board.admit(spec)
    board.run(_tiny_embedded(), progress=False)
    import importlib  # the class the spec resolves to (pytest may import this file twice)

    monkeypatch.setattr(importlib.import_module(HERE).Evolving, "version", "2.0")
    with pytest.raises(QbenchError, match="version"):  # the code changed under the entry
        board.run(_tiny_embedded(), progress=False)
    board.admit(spec)  # re-admitted: the entry is now version 2.0, its rows only
    board.run(_tiny_embedded(), progress=False)
    table, _ = board.table("refs-kadid", n_boot=50)
    row = table.set_index("metric").loc["plugin:evolving"]
    assert row.n_scored == 27, "3 refs x 3 types x 3 levels of version 2.0, not both versions"


# -- 2. global state --------------------------------------------------------------------------
def test_2_corruptions_do_not_depend_on_the_default_dtype():
    x = _image(2, 40)
    names = corrupt.names()
    expected = {n: corrupt.apply(x, n, 3, seed=7) for n in names}
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = {n: corrupt.apply(x, n, 3, seed=7) for n in names}
    finally:
        torch.set_default_dtype(old)
    differ = [n for n in names if got[n].dtype != expected[n].dtype
              or not torch.equal(got[n], expected[n])]
    assert not differ, f"depend on the default dtype: {differ}"


def _global_state():
    return (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(),
            torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())


def _same_state(a, b):
    return (a[:3] == b[:3] and torch.equal(a[3], b[3]) and np.array_equal(a[4], b[4])
            and a[5] == b[5])


@pytest.mark.parametrize("timeout", ["0", "30"])
def test_2_a_metric_cannot_change_torch_global_state_for_the_caller(monkeypatch, timeout):
    monkeypatch.setenv(guard.TIMEOUT_ENV, timeout)
    before = _global_state()
    out = guard.score(Vandal(), _image(2), None)
    assert all(isinstance(v, float) for v in out)
    assert _same_state(before, _global_state())


def test_2_the_admission_probe_restores_global_state_too(tmp_path):
    before = _global_state()
    with contextlib.suppress(QbenchError):  # admitted or not: the caller's state matters here
        Leaderboard(tmp_path).admit(f"{HERE}:Vandal")
    assert _same_state(before, _global_state())


# -- 5. explain keeps the model as it was -----------------------------------------------------
class BNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.cam = nn.Conv2d(6, 6, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        h = torch.relu(self.cam(torch.relu(self.bn(self.conv(x)))))
        return self.head(self.drop(h.mean((2, 3))))


def _bn_net() -> BNNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return BNNet()


def test_5_explain_runs_in_eval_mode_and_leaves_the_model_as_it_was():
    model = _bn_net().train()
    model.head.weight.requires_grad_(False)  # a caller's choice: kept
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {k: p.requires_grad for k, p in model.named_parameters()}
    x = _image(2)
    first = explain(model, x, target=1, method="gradcam", layer=model.cam)
    second = explain(model, x, target=1, method="gradcam", layer=model.cam)
    assert torch.equal(first, second), "maps differ call to call (train mode)"
    assert model.training and model.bn.training and model.drop.training
    assert int(model.bn.num_batches_tracked) == 0
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert {k: p.requires_grad for k, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    evaluated = explain(model.eval(), x, target=1, method="gradcam", layer=model.cam)
    assert torch.equal(first, evaluated)


@pytest.mark.parametrize("target", [3, -1, 2.7, [0, 5], torch.tensor([0.5, 1.0]), True])
def test_5_a_target_outside_the_classes_or_not_an_integer_is_refused(target):
    model = _bn_net().eval()
    with pytest.raises(QbenchError) as err:
        explain(model, _image(2), target=target, method="gradcam", layer=model.cam)
    _one_line(err.value)


def test_5_inference_mode_gives_one_clear_error():
    model = _bn_net().eval()
    with torch.inference_mode(), pytest.raises(QbenchError, match="inference"):
        explain(model, _image(2), target=0, method="gradcam", layer=model.cam)


# -- 7. silent coercions ----------------------------------------------------------------------
@pytest.mark.parametrize("severity", [2.5, True, np.float64(2.0), "3", torch.tensor([2.5])])
def test_7_corrupt_refuses_a_severity_that_is_not_an_integer(severity):
    with pytest.raises(QbenchError) as err:
        corrupt(_image(), "gaussian_noise", severity)
    assert "severity" in _one_line(err.value)


def test_7_corrupt_still_takes_integer_severities():
    x = _image(2)
    a = corrupt.apply(x, "gaussian_blur", 3)
    assert torch.equal(a, corrupt.apply(x, "gaussian_blur", np.int64(3)))
    assert torch.equal(a, corrupt.apply(x, "gaussian_blur", torch.tensor(3)))
    assert torch.equal(a, corrupt.apply(x, "gaussian_blur", torch.tensor([3, 3])))


@pytest.mark.parametrize("bad, what", [
    (lambda x: x * 255, "[0, 1]"),
    (lambda x: x - 0.5, "[0, 1]"),
    (lambda x: x.index_fill(3, torch.tensor([2]), float("nan")), "NaN"),
    (lambda x: x.index_fill(3, torch.tensor([2]), float("inf")), "inf"),
])
def test_7_corrupt_refuses_values_outside_0_1_and_non_finite(bad, what):
    for name in ("jpeg_compression", "gaussian_noise"):
        with pytest.raises(QbenchError) as err:
            corrupt(bad(_image()), name, 3)
        assert what in _one_line(err.value)


def test_7_corrupt_on_the_meta_device_gives_one_line():
    with pytest.raises(QbenchError) as err:
        corrupt(torch.empty(1, 3, 32, 32, device="meta"), "gaussian_noise", 3)
    assert "meta" in _one_line(err.value)


def test_7_metrics_refuse_uint8_and_out_of_range_input():
    sharp = create("sharpness")
    x = _image()
    with pytest.raises(QbenchError) as err:
        sharp((x * 255).to(torch.uint8))
    assert "uint8" in _one_line(err.value)
    with pytest.raises(QbenchError, match=r"\[0, 1\]"):
        sharp(x * 255)
    with pytest.raises(QbenchError, match=r"\[0, 1\]"):
        check_inputs(MineV1.info, x, x * 255)  # the reference too
    assert sharp(x).shape == (1,)


# -- 10. tracebacks where one line is promised ------------------------------------------------
def test_10_a_metric_called_on_zero_images_gives_one_line():
    with pytest.raises(QbenchError) as err:
        create("sharpness")(torch.empty(0, 3, 32, 32))
    assert "0 images" in _one_line(err.value) or "no images" in str(err.value)


def test_10_a_metric_named_like_a_causal_factor_is_analysed(tmp_path):
    from qbench.causal.analysis import analyze
    from qbench.causal.synthetic import planted_table

    df, info, _ = planted_table(n_items=24, n_groups=6, strengths={"blur": 1.0, "tint": 0.1},
                                severities=(1, 5), seed=4)
    df = df.rename(columns={"aligned": "content", "noise": "treated"})
    info = {{"aligned": "content", "noise": "treated"}.get(k, k): v for k, v in info.items()}
    tables = analyze(df, info, tmp_path, metrics=["content", "treated", "misaligned"],
                     aligned=("content",), n_boot=20, refute_accuracy_severities=(),
                     refute_metric_severities=(), num_simulations=2, gcm_rows=200,
                     gcm_options={"num_samples": 50, "max_runs": 2}, progress=False)
    att = tables["attribution"]
    assert set(att["outcome"]) >= {"content", "treated"}
    assert set(att["factor"]) == {"content", "corruption", "severity"}
    assert set(tables["alignment"]["metric"]) == {"content", "treated", "misaligned"}
    assert list(tables["table"].columns) == [*df.columns, "accuracy"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "content" in summary["metrics"]


# -- 11. misleading reasons -------------------------------------------------------------------
def test_11_a_timeout_in_the_determinism_recheck_is_recorded_as_a_timeout(monkeypatch):
    monkeypatch.setenv(guard.TIMEOUT_ENV, "0.2")
    x = _image(3)
    out = guard.score(SlowAlone(), x, x.flip(0))
    assert all(isinstance(o, guard.Failure) for o in out)
    assert "nondeterministic" not in out[0] and "did not return" in out[0]
    assert {o.kind for o in out} == {"transient"}  # a rerun retries them


def test_11_a_0d_output_in_the_recheck_is_recorded_as_an_output_error():
    out = guard.score(ScalarForOne(), _image(3), None)
    assert all(isinstance(o, guard.Failure) for o in out)
    assert "nondeterministic" not in out[0] and "shape ()" in out[0]


def test_11_leaderboard_add_says_when_nothing_was_scored(tmp_path, monkeypatch):
    monkeypatch.setenv(guard.TIMEOUT_ENV, "0.2")
    res = CliRunner().invoke(cli, ["leaderboard", "add", f"{HERE}:SlowAlone", "--dir",
                                   str(tmp_path), "--n-refs", "3", "--size", "48",
                                   "--levels", "1,3,5"])
    assert res.exit_code == 0, res.output
    assert "scored plugin:slow-alone" not in res.output
    assert "0 items scored" in res.output and "did not return" in res.output


def test_11_no_statistic_is_shown_on_too_few_items(tmp_path):
    from qbench.leaderboard.render import render_table

    board = Leaderboard(tmp_path)
    board.admit("pyiqa:psnr")
    board.run(testsets.refs_kadid(n_refs=2, size=48, levels=(1, 5), types=TYPES[:1]),
              progress=False)
    table, _ = board.table("refs-kadid", n_boot=50)
    row = table.set_index("metric").loc["pyiqa:psnr"]
    assert row.n_scored == 4
    assert np.isnan(row.consistency) and np.isnan(row.consistency_low)
    text = render_table("refs-kadid", board, table)
    assert "too few" in text and "need" in text
