import json

import pytest
from click.testing import CliRunner

from qbench.cli import cli
from qbench.leaderboard import testsets
from qbench.leaderboard.board import Leaderboard, Rejected
from qbench.leaderboard.probe import probe
from qbench.metrics import create
from tests.dataset_fixtures import write_kadid

TYPES = ["kadid:gaussian_blur", "kadid:white_noise", "kadid:jpeg"]


def _tiny_embedded():
    return testsets.refs_kadid(n_refs=3, size=48, levels=(1, 3, 5), types=TYPES)


@pytest.mark.parametrize("spec, failing_check", [
    ("tests.plugins:Raises", "runs"),
    ("tests.plugins:ReturnsNaN", "finite"),
    ("tests.plugins:WrongShape", "shape"),
    ("tests.plugins:Nondeterministic", "deterministic"),
    ("tests.plugins:WrongDirection", "direction"),
    ("tests.plugins:NoInfo", "loads"),
])
def test_broken_metrics_are_rejected_with_a_reason_and_the_board_is_untouched(tmp_path, spec,
                                                                              failing_check):
    board = Leaderboard(tmp_path)
    board.admit("pyiqa:psnr")
    before = (tmp_path / "entries.json").read_bytes()
    with pytest.raises(Rejected) as err:
        board.admit(spec)
    assert failing_check in str(err.value)
    assert (tmp_path / "entries.json").read_bytes() == before


def test_real_quality_metrics_pass_the_probe():
    for spec in ("pyiqa:psnr", "pyiqa:ms_ssim", "pyiqa:piqe", "tests.plugins:GoodMeanAbsError"):
        report = probe(create(spec), spec)
        assert report.passed, report.reason


def test_embedded_board_reports_level_order_consistency_with_cis_and_counts(tmp_path):
    board = Leaderboard(tmp_path)
    for spec in ("pyiqa:psnr", "pyiqa:entropy", "tests.plugins:GoodMeanAbsError"):
        board.admit(spec)
    board.run(_tiny_embedded(), progress=False)
    table, per = board.table("refs-kadid", n_boot=200)
    assert set(table.metric) == {"pyiqa:psnr", "pyiqa:entropy", "plugin:good-mae"}
    psnr = table.set_index("metric").loc["pyiqa:psnr"]
    assert psnr.consistency_low <= psnr.consistency <= psnr.consistency_high
    assert psnr.consistency > 0.8, "PSNR falls with blur, noise and JPEG levels"
    # FR: 3 refs x 3 types x 3 levels; NR also scores the clean image (level 0)
    assert psnr.n_scored == 27 and psnr.n_failed == 0
    assert table.set_index("metric").loc["pyiqa:entropy"].n_scored == 30
    mae = table.set_index("metric").loc["plugin:good-mae"]
    assert mae.consistency > 0.8, "lower-is-better metrics are oriented by their metadata"
    assert set(per["pyiqa:psnr"].corruption) == set(TYPES)


def test_rerun_reuses_every_finished_row(tmp_path):
    board = Leaderboard(tmp_path)
    board.admit("pyiqa:psnr")
    board.run(_tiny_embedded(), progress=False)
    again = board.run(_tiny_embedded(), progress=False)
    assert again["pyiqa:psnr"]["written"] == 0 and again["pyiqa:psnr"]["reused"] == 27


def test_real_dataset_board_uses_mos_and_marks_contaminated_cells(tmp_path):
    root = write_kadid(tmp_path / "kadid")
    board = Leaderboard(tmp_path / "board")
    board.admit("pyiqa:psnr")
    board.admit("tests.plugins:GoodMeanAbsError")  # declares trained_on=("kadid10k",)
    board.run(testsets.real("kadid10k", root), progress=False)
    table, per = board.table("kadid10k", n_boot=200)
    t = table.set_index("metric")
    assert bool(t.loc["plugin:good-mae"].contaminated) and not bool(t.loc["pyiqa:psnr"].contaminated)
    assert t.loc["pyiqa:psnr"].n_scored == 12  # FR against the dataset's own references
    for key in ("plcc", "plcc_logistic", "srcc", "krcc"):
        assert key in t.columns and f"{key}_low" in t.columns
    assert set(per["pyiqa:psnr"].distortion) == {"gaussian_blur", "white_noise"}


def test_cli_add_rejects_a_broken_plugin_and_shows_a_good_one(tmp_path):
    runner = CliRunner()
    opts = ["--dir", str(tmp_path), "--n-refs", "2", "--size", "48", "--levels", "1,5"]
    bad = runner.invoke(cli, ["leaderboard", "add", "tests.plugins:ReturnsNaN", *opts],
                        standalone_mode=False)
    assert isinstance(bad.exception, Rejected) and "NaN" in str(bad.exception)
    good = runner.invoke(cli, ["leaderboard", "add", "tests.plugins:GoodMeanAbsError", *opts])
    assert good.exit_code == 0, good.output
    shown = runner.invoke(cli, ["leaderboard", "show", "--dir", str(tmp_path)])
    assert "plugin:good-mae" in shown.output and "severity-rank consistency" in shown.output
    data = json.loads(runner.invoke(cli, ["leaderboard", "show", "--dir", str(tmp_path),
                                          "--json"]).output)
    assert data["refs-kadid"]["table"][0]["metric"] == "plugin:good-mae"
