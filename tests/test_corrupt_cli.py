import numpy as np
from click.testing import CliRunner
from PIL import Image

import qbench.corrupt as corrupt
from qbench.cli import cli


def test_registry_holds_the_three_sets_with_their_sizes():
    by_source = {}
    for name in corrupt.names():
        by_source.setdefault(corrupt.info(name).source, []).append(name)
    assert len(by_source["imagenet-c"]) == 19
    assert len(by_source["kadid"]) == 25
    assert len(by_source["rankiqa-live"]) == 4 and len(by_source["rankiqa-tid"]) == 17
    for name in corrupt.names():
        c = corrupt.info(name)
        assert c.family in ("noise", "blur", "weather", "digital", "color", "compression")
        assert isinstance(c.random, bool) and c.tables


def test_corrupt_list_prints_every_name_and_filters_by_family():
    res = CliRunner().invoke(cli, ["corrupt", "list"])
    assert res.exit_code == 0 and f"{len(corrupt.names())} corruptions" in res.output
    for name in corrupt.names():
        assert name in res.output
    blur = CliRunner().invoke(cli, ["corrupt", "list", "--family", "blur", "--tables"])
    assert "gaussian_blur" in blur.output and "gaussian_noise" not in blur.output
    assert "imagenet: 1, 2, 3, 4, 6" in blur.output


def test_corrupt_preview_writes_a_grid_of_every_type_and_severity(tmp_path):
    img = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)).save(img)
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(cli, ["corrupt", "preview", str(img), "-o", str(out), "--size",
                                   "32", "--source", "rankiqa-live"])
    assert res.exit_code == 0, res.output
    from qbench.corrupt.preview import LABEL_W

    grid = np.asarray(Image.open(out))
    tile_h, tile_w = round(40 * 32 / 60), 32  # longer side scaled to --size
    # a 20 px header, then 4 rows (the LIVE set); a label column, clean + 5 severities
    assert grid.shape[:2] == (20 + 4 * (tile_h + 4), LABEL_W + 6 * (tile_w + 4))
    assert grid[20 + 2, LABEL_W + 2 * (tile_w + 4) + 2].any()  # severity 2 tile is drawn
