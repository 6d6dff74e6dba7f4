import sys

import pytest
import torch

from qbench.metrics import MissingWeightsError, PluginError, create, names
from qbench.metrics.offline import no_downloads

EXAMPLE = "examples/qbench-example-metric"


def test_pyiqa_metrics_are_created_by_name_with_their_declared_metadata():
    m = create("pyiqa:gmsd")
    assert m.info.kind == "FR" and m.info.higher_is_better is False
    assert m.info.needs_weights is False and m.info.name == "pyiqa:gmsd"
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    scores = m(x.clamp(0.1, 0.9) * 0.9, refs=x)
    assert scores.shape == (3,) and scores.dtype == torch.float64
    with pytest.raises(ValueError, match="full-reference"):
        m(x)


def test_a_metric_missing_weights_fails_at_once_naming_the_file_and_path():
    with pytest.raises(MissingWeightsError) as err:
        create("pyiqa:niqe")
    msg = str(err.value)
    assert "niqe_modelparameters.mat" in msg and "expected at" in msg and "never downloads" in msg


def test_downloads_are_refused_inside_the_offline_guard_and_restored_after():
    import torch.hub

    original = torch.hub.download_url_to_file
    with no_downloads("test"), pytest.raises(MissingWeightsError):
        torch.hub.download_url_to_file("https://example.invalid/w.pth", "/tmp/w.pth")
    assert torch.hub.download_url_to_file is original


def test_module_attr_specs_load_classes_instances_and_factories():
    for spec in ("tests.plugins:GoodMeanAbsError", "tests.plugins:factory"):
        m = create(spec)
        assert m.info.name == "plugin:good-mae" and m.info.trained_on == ("kadid10k",)


@pytest.mark.parametrize("spec, match", [
    ("tests.plugins:NoInfo", "no `info`"),
    ("tests.plugins:Missing", "has no attribute"),
    ("no_such_package_xyz:Metric", "cannot import"),
])
def test_broken_specs_give_a_plugin_error_with_the_reason(spec, match):
    with pytest.raises(PluginError, match=match):
        create(spec)


def test_entry_point_plugins_are_found_by_name(tmp_path, monkeypatch):
    """A package declaring the ``qbench.metrics`` entry point (written here as the metadata an
    installed wheel has) is created by its entry-point name."""
    dist = tmp_path / "qbench_example_metric-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: qbench-example-metric\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text(
        "[qbench.metrics]\nexample-gradient = qbench_example_metric:GradientEnergy\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(EXAMPLE)
    sys.modules.pop("qbench_example_metric", None)
    assert "example-gradient" in names(include_pyiqa=False)
    m = create("example-gradient")
    x = torch.rand(2, 3, 16, 16)
    assert m(x, refs=x).tolist() == pytest.approx([1.0, 1.0])


def test_builtin_metrics_are_listed_and_created():
    assert {"sharpness", "colorfulness"} <= set(names(include_pyiqa=False))
    x = torch.rand(2, 3, 16, 16)
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    sharp = create("sharpness")
    assert (sharp(x) > sharp(blurred)).all()


def test_metrics_list_shows_metadata_and_offline_status(monkeypatch):
    import json

    from click.testing import CliRunner

    from qbench.cli import cli
    from qbench.metrics import catalog

    monkeypatch.setattr(catalog, "_probe", lambda name: (name != "pyiqa:niqe", "weights missing"))
    res = CliRunner().invoke(cli, ["metrics", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["pyiqa:ssim"]["offline"] and rows["pyiqa:ssim"]["kind"] == "FR"
    assert rows["pyiqa:gmsd"]["higher_is_better"] is False
    assert rows["pyiqa:ms_ssim"]["min_size"] == 161
    assert rows["pyiqa:niqe"]["offline"] is False and rows["pyiqa:niqe"]["needs_weights"]
    assert rows["pyiqa:topiq_nr"]["trained_on"] == ["koniq10k"]
    assert rows["sharpness"]["offline"] and rows["sharpness"]["kind"] == "NR"
    quick = CliRunner().invoke(cli, ["metrics", "list", "--no-check", "--offline-only"])
    assert "pyiqa:psnr" in quick.output and "pyiqa:niqe" not in quick.output
