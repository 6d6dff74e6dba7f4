from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import color

import qbench.corrupt as corrupt
import qbench.corrupt.kadid  # noqa: F401
import qbench.data as data
from qbench.corrupt import kadid
from qbench.corrupt.registry import FAMILIES

TYPES = ["gaussian_blur", "lens_blur", "motion_blur", "color_diffusion", "color_shift",
         "color_quantization", "color_saturation_1", "color_saturation_2", "jpeg2000", "jpeg",
         "white_noise", "white_noise_color", "impulse_noise", "multiplicative_noise", "denoise",
         "brighten", "darken", "mean_shift", "jitter", "non_eccentricity_patch", "pixelate",
         "quantization", "color_block", "high_sharpen", "contrast_change"]
NAMES = [f"kadid:{t}" for t in TYPES]
RANDOM = [n for n in NAMES if corrupt.info(n).random]
# Documented in docs/corruptions-kadid.md: KADID's own level order is not a PSNR order here.
NOT_MONOTONE = {"kadid:mean_shift", "kadid:contrast_change"}
# The first six references are mostly greyscale; these mix colour and greyscale photographs.
REF_IDS = [0, 1, 6, 7, 13, 15]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Many small ops: one thread is as fast here and does not spin on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def refs():
    return data.load("refs", size=128).batch(REF_IDS)


def _psnr(a, b):
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)  # identical images: 100 dB
    return float((10 * torch.log10(1 / mse)).mean())


def test_all_25_types_are_registered_in_kadid_order_with_five_levels():
    registered = [n for n in corrupt.names() if n.startswith("kadid:")]
    assert registered == NAMES
    for n in NAMES:
        c = corrupt.info(n)
        assert c.family in FAMILIES and c.source == "kadid"
        assert len(c.tables["kadid"]) == 5 and c.reference_size == {"kadid": 384}


def test_kadid_types_match_the_dataset_loader():
    from qbench.data.loaders.kadid import TYPES as LOADER_TYPES

    assert TYPES == LOADER_TYPES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [(32, 32), (64, 64), (224, 224), (48, 80)])
def test_every_type_runs_at_every_size(name, size):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    for level in range(1, 6):
        y = corrupt.apply(x, name, level, seed=0)
        assert y.shape == x.shape and y.dtype == torch.float32
        assert torch.isfinite(y).all() and float(y.min()) >= 0 and float(y.max()) <= 1


@pytest.mark.parametrize("name", RANDOM)
def test_random_types_are_independent_of_batch_company_and_order(name):
    x = torch.rand(4, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    full = corrupt.apply(x, name, 3, seed=1)
    for k in range(4):
        assert torch.equal(full[k], corrupt.apply(x[k : k + 1], name, 3, seed=1)[0])
    order = [2, 0, 3, 1]
    assert torch.equal(full[order], corrupt.apply(x[order], name, 3, seed=1))
    assert not torch.equal(full, corrupt.apply(x, name, 3, seed=2))


def _mean_psnr_by_level(name, x):
    seeds = (0, 1, 2) if corrupt.info(name).random else (0,)
    return [np.mean([_psnr(corrupt.apply(x, name, lev, seed=s), x) for s in seeds])
            for lev in range(1, 6)]


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NOT_MONOTONE])
def test_psnr_falls_strictly_from_level_1_to_5(name, refs):
    p = _mean_psnr_by_level(name, refs)
    assert all(a > b for a, b in pairwise(p)), [round(v, 2) for v in p]


def test_exactly_the_documented_types_are_not_monotone(refs):
    for name in NOT_MONOTONE:  # every other type is checked by the test above
        p = _mean_psnr_by_level(name, refs)
        assert not all(a > b for a, b in pairwise(p)), name
    doc = Path(__file__).resolve().parents[1] / "docs" / "corruptions-kadid.md"
    section = doc.read_text(encoding="utf-8").split("## Not monotone in PSNR", 1)[1]
    bullets = [ln for ln in section.split("\n## ", 1)[0].splitlines() if ln.startswith("* `")]
    listed = {f"kadid:{ln.split('`')[1]}" for ln in bullets}
    assert listed == NOT_MONOTONE


def test_mean_shift_moves_brightness_down_through_identity_at_level_3(refs):
    outs = [corrupt.apply(refs, "kadid:mean_shift", lev) for lev in range(1, 6)]
    means = [float(o.mean()) for o in outs]
    assert all(a > b for a, b in pairwise(means))
    assert torch.equal(outs[2], refs)
    p = [_psnr(o, refs) for o in outs]
    assert p[0] < p[1] < p[2] and p[4] < p[3] < p[2], "farther from level 3, farther from clean"


def test_contrast_change_lowers_contrast_level_by_level_crossing_clean_after_3(refs):
    def spread(t):
        return float(t.std(dim=(1, 2, 3)).mean())

    s = [spread(corrupt.apply(refs, "kadid:contrast_change", lev)) for lev in range(1, 6)]
    assert all(a > b for a, b in pairwise(s))
    assert s[2] > spread(refs) > s[3]


def test_spatial_parameters_scale_with_the_short_side_and_others_do_not():
    blur = corrupt.info("kadid:gaussian_blur")
    assert blur.param(4, "kadid", 128, 200) == pytest.approx(2 / 3)
    assert corrupt.info("kadid:motion_blur").param(1, "kadid", 96, 96) == pytest.approx(1.0)
    assert corrupt.info("kadid:color_block").param(5, "kadid", 192, 192) == (10, 16.0)
    assert corrupt.info("kadid:jpeg").param(2, "kadid", 32, 32) == 36
    assert corrupt.info("kadid:white_noise").param(5, "kadid", 32, 32) == 0.01


def test_identity_levels_of_the_matlab_generator_are_kept():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(corrupt.apply(x, "kadid:motion_blur", 1), x)  # length 1: no motion
    y = corrupt.apply(x, "kadid:color_saturation_2", 1)  # a*b* x 1: a Lab round trip
    assert float((y - x).abs().max()) < 1e-4


def test_lab_conversion_matches_skimage():
    x = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(2))
    ours = kadid.rgb_to_lab(x)[0].permute(1, 2, 0).double().numpy()
    ref = color.rgb2lab(x[0].permute(1, 2, 0).double().numpy())
    assert np.abs(ours - ref).max() < 0.02
    assert float((kadid.lab_to_rgb(kadid.rgb_to_lab(x)) - x).abs().max()) < 1e-4
