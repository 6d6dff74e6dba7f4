import re
from dataclasses import asdict

from click.testing import CliRunner

import qbench.data as data
from qbench.cli import cli
from qbench.engine import grid, score
from qbench.report import build_report
from qbench.store import Store
from tests.conftest import SMALL
from tests.toy_metrics import FailsOnDarkImages, MeanAbsError, MeanBrightness


def _tiny_run(results):
    ds = data.load("scenes", split="test", size=32, **SMALL).subset(range(8))
    store = Store(results / "store")
    run = store.begin_run({"t": "report"})
    metrics = [MeanBrightness(), MeanAbsError(), FailsOnDarkImages()]
    store.record_scorers(run, [asdict(m.info) for m in metrics])
    score(store, run, ds, grid(["gaussian_noise", "contrast"], [1, 3, 5]), metrics,
          progress=False)
    store.end_run(run)
    return store


def test_report_is_offline_with_plotly_embedded_once_and_a_numeric_summary(tmp_path):
    _tiny_run(tmp_path)
    html = build_report(tmp_path).read_text()
    assert html.count("Plotly.newPlot") >= 3
    assert len(re.findall(r"plotly\.js v\d", html)) == 1, "plotly.js embedded exactly once"
    assert not re.search(r"<script[^>]+src=[\"']?https?:", html), "no script from a CDN"
    summary = re.search(r"<p class='summary' id='summary'>(.*?)</p>", html).group(1)
    assert "toy:mae" in summary and re.search(r"rho -?\d\.\d{3}", summary)
    assert "failed" in summary


def test_report_direction_comes_from_metadata_not_from_the_sign_of_the_data(tmp_path):
    from qbench.report.scoring import severity_consistency

    store = _tiny_run(tmp_path)
    info = store.scorer_info()
    directions = {s: 1 if info[s]["higher_is_better"] else -1 for s in info}
    cons = severity_consistency(store.rows(), directions)
    mae_noise = cons[(cons.scorer == "toy:mae") & (cons.corruption == "gaussian_noise")]
    assert float(mae_noise.rho.iloc[0]) > 0.9, "error grows with severity: lower is better"


def test_cli_report_rebuilds_from_the_store(tmp_path):
    _tiny_run(tmp_path)
    res = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report.html").exists() and "report:" in res.output


def test_cli_report_on_a_folder_without_a_store_fails_in_one_line(tmp_path):
    res = CliRunner().invoke(cli, ["report", str(tmp_path)], standalone_mode=False)
    assert "no results store" in str(res.exception)


def test_every_command_has_help():
    runner = CliRunner()
    for args in ([], ["data"], ["data", "list"], ["data", "show"], ["run"], ["run", "demo"],
                 ["report"], ["corrupt"], ["corrupt", "list"], ["corrupt", "preview"],
                 ["bench"], ["bench", "corrupt"]):
        res = runner.invoke(cli, [*args, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output, args


def test_cli_data_list_names_every_dataset():
    res = CliRunner().invoke(cli, ["data", "list"])
    for name in data.names():
        assert name in res.output


def test_cli_data_show_scenes_prints_class_counts_and_writes_a_preview(tmp_path):
    out = tmp_path / "scenes.png"
    res = CliRunner().invoke(cli, ["data", "show", "scenes", "--split", "val", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "scenes/val: 1000 images" in res.output and "classes (10)" in res.output
    assert out.stat().st_size > 10_000


def test_cli_corrupt_list_shows_tables():
    res = CliRunner().invoke(cli, ["corrupt", "list"])
    assert "gaussian_noise" in res.output and "imagenet" in res.output
