import pytest
import torch

import qbench
import qbench.corrupt as corrupt


def _images(n=6, h=32, w=40):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(0))


def test_corrupt_is_callable_from_the_top_level_package_and_lists_names():
    assert "gaussian_noise" in qbench.corrupt.names()
    assert set(corrupt.names("noise")) >= {"gaussian_noise", "shot_noise"}
    y = qbench.corrupt(_images(), "contrast", 2)
    assert y.shape == (6, 3, 32, 40) and y.dtype == torch.float32


@pytest.mark.parametrize("name", corrupt.names())
def test_output_is_independent_of_batch_order_and_company(name):
    x = _images()
    full = corrupt.apply(x, name, 3, seed=1)
    alone = corrupt.apply(x[4:5], name, 3, seed=1)
    reordered = corrupt.apply(x[[5, 2, 4]], name, 3, seed=1)
    assert torch.equal(full[4], alone[0]) and torch.equal(full[4], reordered[2])
    assert float(full.min()) >= 0 and float(full.max()) <= 1


def test_random_corruptions_differ_between_seeds_and_between_images():
    x = _images(2)
    x[1] = x[0]
    a = corrupt.apply(x, "gaussian_noise", 2, seed=0)
    b = corrupt.apply(x, "gaussian_noise", 2, seed=1)
    assert not torch.equal(a, b)
    assert torch.equal(a[0], a[1]), "same image, same seed: same bytes"


def test_per_image_severities_match_single_severity_calls():
    x = _images(3)
    sev = torch.tensor([1, 5, 3])
    mixed = corrupt.apply(x, "gaussian_blur", sev)
    for k in range(3):
        assert torch.equal(mixed[k], corrupt.apply(x[k : k + 1], "gaussian_blur", int(sev[k]))[0])


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="severity"):
        corrupt.apply(_images(), "contrast", 6)
    with pytest.raises(qbench.errors.UnknownNameError):
        corrupt.apply(_images(), "no_such", 1)
    with pytest.raises(ValueError, match="Nx3xHxW"):
        corrupt.apply(torch.rand(3, 8, 8), "contrast", 1)
