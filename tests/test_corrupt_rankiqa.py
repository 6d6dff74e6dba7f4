import re
from itertools import pairwise
from pathlib import Path

import pytest
import torch

import qbench.corrupt as corrupt
import qbench.corrupt.rankiqa_sets  # noqa: F401
import qbench.data as data
from qbench.corrupt import ops
from qbench.corrupt import rankiqa_sets as rs
from qbench.data.loaders.tid2013 import TYPES

LIVE_NAMES = [f"rankiqa-live:{t}" for t in ("gblur", "wn", "jpeg", "jp2k")]
TID_NUMBERS = [1, 2, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16, 17, 18, 19, 22, 23]
TID_NAMES = [f"rankiqa-tid:{TYPES[n - 1]}" for n in TID_NUMBERS]
ALL = LIVE_NAMES + TID_NAMES
DOC = Path(__file__).resolve().parents[1] / "docs" / "corruptions-rankiqa.md"


def _levels(name):
    return len(next(iter(corrupt.info(name).tables.values())))


def _psnr(y, x):
    mse = ((y - x) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def _documented_not_monotone():
    """Names listed as bullets under the doc's 'Not monotone in PSNR by design' heading."""
    text = DOC.read_text()
    section = text.split("## Not monotone in PSNR by design", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([^`]+)`", section, flags=re.M))


@pytest.fixture(scope="module")
def photos():
    """Six colourful reference photographs at 128 px (some refs are grey, useless for colour)."""
    refs = data.load("refs", size=128)
    x = refs.batch(range(len(refs)))
    colourful = ((x.amax(1) - x.amin(1)).mean(dim=(1, 2)) > 0.05).nonzero().flatten()
    assert colourful.numel() >= 6
    return x[colourful[:6]]


def test_registered_names_levels_and_published_live_parameters():
    names = set(corrupt.names())
    assert {n for n in names if n.startswith("rankiqa-live:")} == set(LIVE_NAMES)
    assert {n for n in names if n.startswith("rankiqa-tid:")} == set(TID_NAMES)
    for n in LIVE_NAMES:
        c = corrupt.info(n)
        assert c.source == "rankiqa-live" and c.reference_size == {"rankiqa-live": 512}
        assert _levels(n) == 5
    for n in TID_NAMES:
        c = corrupt.info(n)
        assert c.source == "rankiqa-tid" and c.reference_size == {"rankiqa-tid": 512}
        assert _levels(n) == 4
    table = {n: corrupt.info(n).tables["rankiqa-live"] for n in LIVE_NAMES}
    assert table["rankiqa-live:gblur"] == (7, 15, 39, 91, 199)
    assert table["rankiqa-live:wn"] == tuple(2.0**e for e in (-10, -7.5, -5.5, -3.5, 0))
    assert table["rankiqa-live:jpeg"] == (43, 12, 7, 4, 0)
    assert table["rankiqa-live:jp2k"] == (0.46, 0.16, 0.07, 0.04, 0.02)


def test_spatial_parameters_scale_and_intensity_parameters_do_not():
    blur = corrupt.info("rankiqa-live:gblur")
    assert blur.param(5, "rankiqa-live", 512, 700) == 199
    assert blur.param(5, "rankiqa-live", 32, 40) == pytest.approx(199 / 16)
    assert corrupt.info("rankiqa-live:wn").param(5, "rankiqa-live", 32, 32) == 1.0
    assert corrupt.info("rankiqa-live:jpeg").param(5, "rankiqa-live", 32, 32) == 0
    nepn = corrupt.info("rankiqa-tid:non_eccentricity_pattern_noise")
    assert nepn.param(4, "rankiqa-tid", 128, 128) == (300, 4, 1)
    # JPEG 2000: at the reference side the ratio is exactly the published 24 / bpp
    assert rs._jp2k_ratio(0.02, 512, 512) == pytest.approx(24 / 0.02)


def test_jpeg_quality_zero_is_encoded_as_quality_one():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert torch.equal(corrupt.apply(x, "rankiqa-live:jpeg", 5), ops.jpeg(x, 1))


@pytest.mark.parametrize("name", ALL)
def test_every_level_runs_on_every_size(name):
    for h, w in [(32, 32), (64, 64), (224, 224), (48, 80)]:
        x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        for level in range(1, _levels(name) + 1):
            y = corrupt.apply(x, name, level, seed=0)
            assert y.shape == x.shape and y.dtype == torch.float32, (name, h, w, level)
            assert torch.isfinite(y).all(), (name, h, w, level)
            assert float(y.min()) >= 0 and float(y.max()) <= 1, (name, h, w, level)


@pytest.mark.parametrize("name", [n for n in ALL if corrupt.info(n).random])
def test_random_types_are_a_function_of_image_and_seed_only(name):
    x = torch.rand(3, 3, 48, 64, generator=torch.Generator().manual_seed(7))
    full = corrupt.apply(x, name, 2, seed=1)
    reordered = corrupt.apply(x[[2, 0, 1]], name, 2, seed=1)
    for k, pos in enumerate([1, 2, 0]):
        alone = corrupt.apply(x[k : k + 1], name, 2, seed=1)
        assert torch.equal(full[k], alone[0]) and torch.equal(full[k], reordered[pos])
    assert not torch.equal(full, corrupt.apply(x, name, 2, seed=2))


def test_deterministic_types_ignore_the_seed():
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(5))
    for name in ALL:
        if not corrupt.info(name).random:
            assert torch.equal(corrupt.apply(x, name, 3, seed=0), corrupt.apply(x, name, 3, seed=9))


def test_documented_not_monotone_list_is_exact():
    assert _documented_not_monotone() == set(rs.NOT_MONOTONE)
    assert set(rs.NOT_MONOTONE) <= set(ALL)


@pytest.mark.parametrize("name", [n for n in ALL if n not in rs.NOT_MONOTONE])
def test_psnr_strictly_decreases_across_levels(name, photos):
    psnr = [_psnr(corrupt.apply(photos, name, s), photos) for s in range(1, _levels(name) + 1)]
    assert all(a > b for a, b in pairwise(psnr)), (name, psnr)


def test_block_wise_covers_more_area_per_level_with_milder_blocks(photos):
    name = "rankiqa-tid:local_block_wise_distortions"
    ys = [corrupt.apply(photos, name, s) for s in range(1, 5)]
    changed = [float((y != photos).any(1).float().mean()) for y in ys]
    assert all(a < b for a, b in pairwise(changed)), changed
    psnr = [_psnr(y, photos) for y in ys]
    assert psnr[3] == min(psnr), psnr  # the most blocks end lowest
    # level 1 blocks zero the red channel; level 4 blocks carry the image's mean colour
    assert float(ys[0][:, 0][(ys[0] != photos).any(1)].max()) == 0.0
    mask = (ys[3] != photos).any(1, keepdim=True).expand_as(photos)
    means = photos.mean(dim=(2, 3), keepdim=True).expand_as(photos)
    assert torch.allclose(ys[3][mask], means[mask], atol=1e-6)
