import itertools

import numpy as np
import pytest

import qbench.data as data
from qbench.data import scenes
from qbench.data.photos import load_photos
from qbench.data.shapes import CLASSES
from tests.conftest import SMALL


def test_same_seed_gives_byte_identical_arrays_across_fresh_generations():
    photos = load_photos()
    cfg = scenes.ScenesConfig(seed=3, size=48, **SMALL)
    a = scenes.generate_split(cfg, "test", photos)
    b = scenes.generate_split(cfg, "test", photos)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()


def test_another_seed_gives_a_different_set():
    photos = load_photos()
    a = scenes.generate_split(scenes.ScenesConfig(seed=0, size=32, **SMALL), "val", photos)
    b = scenes.generate_split(scenes.ScenesConfig(seed=1, size=32, **SMALL), "val", photos)
    assert a["images"].tobytes() != b["images"].tobytes()


def test_cached_load_equals_fresh_generation():
    ds = data.load("scenes", split="train", seed=5, size=32, **SMALL)
    fresh = scenes.generate_split(scenes.ScenesConfig(5, 32, **SMALL), "train", load_photos())
    assert ds.array.tobytes() == fresh["images"].tobytes()
    assert ds.masks.tobytes() == fresh["masks"].tobytes()
    assert np.array_equal(ds.labels, fresh["labels"])


def test_at_least_ten_classes_with_masks_matching_the_composite():
    assert len(CLASSES) >= 10
    ds = data.load("scenes", split="test", size=64, **SMALL)
    assert ds.array.shape == (20, 64, 64, 3) and ds.masks.shape == (20, 64, 64)
    for i in range(len(ds)):
        m = ds.masks[i]
        inside = (m == 255).mean()
        assert 0.05 < inside < 0.7, "object covers a sensible share of the image"
    img = ds.batch([0, 1])
    assert img.shape == (2, 3, 64, 64) and img.dtype.is_floating_point
    assert float(img.min()) >= 0 and float(img.max()) <= 1


def test_every_class_is_drawn_and_the_classes_differ_in_shape():
    masks = {c: scenes.render_mask(c, 64, 32, 32, 22, 0.0, 1.0) > 127 for c in CLASSES}
    for a in CLASSES:
        assert masks[a].any()
        for b in CLASSES:
            if a < b:
                iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
                assert iou < 0.9, f"{a} and {b} are nearly the same shape"


def test_size_is_configurable_and_non_default_sizes_work():
    ds = data.load("scenes", split="val", size=96, **SMALL)
    assert ds.image(0).shape == (3, 96, 96)


def test_default_split_sizes_are_ten_one_and_two_thousand():
    cfg = scenes.ScenesConfig()
    assert (cfg.n_train, cfg.n_val, cfg.n_test) == (10_000, 1_000, 2_000)


def test_splits_use_disjoint_regions_of_every_photograph():
    for photo in load_photos():
        h, w = photo.array.shape[:2]
        long_side = max(h, w)
        spans = []
        for split, (lo, hi) in scenes.SPLIT_BOUNDS.items():
            strip = scenes._strip(photo.array, split)
            assert min(strip.shape[:2]) >= 32, f"{photo.key}/{split} strip too small"
            spans.append((round(lo * long_side), round(hi * long_side)))
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start


def test_crops_stay_inside_the_split_strip():
    # mark each split's strip with its own value and check crops see only that value
    rng = np.random.default_rng(0)
    photo = np.zeros((300, 500, 3), np.uint8)
    for k, (lo, hi) in enumerate(scenes.SPLIT_BOUNDS.values()):
        photo[:, round(lo * 500) : round(hi * 500)] = 50 * (k + 1)
    for k, split in enumerate(scenes.SPLITS):
        for _ in range(20):
            crop = scenes._crop(rng, scenes._strip(photo, split), 64)
            assert set(np.unique(crop)) == {50 * (k + 1)}


def test_cache_is_rebuilt_when_the_generator_version_changes(monkeypatch):
    ds = data.load("scenes", split="val", seed=9, size=32, **SMALL)
    calls = []
    real = scenes.generate_split
    monkeypatch.setattr(scenes, "generate_split", lambda *a: calls.append(1) or real(*a))
    data.load("scenes", split="val", seed=9, size=32, **SMALL)
    assert calls == [], "a valid cache entry is reused"
    monkeypatch.setattr(scenes, "GENERATOR_VERSION", scenes.GENERATOR_VERSION + 1)
    again = data.load("scenes", split="val", seed=9, size=32, **SMALL)
    assert calls == [1], "a new generator version regenerates"
    assert again.array.tobytes() == ds.array.tobytes()


def test_a_tampered_cache_entry_fails_its_fingerprint_and_is_rebuilt(monkeypatch):
    from qbench.data import cache

    data.load("scenes", split="test", seed=11, size=32, **SMALL)
    folder = next(p for p in (cache.qbench_home() / "scenes").iterdir()
                  if '"seed": 11' in (p / "meta.json").read_text())
    with np.load(folder / "test.npz") as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["images"][0, 0, 0, 0] ^= 1
    np.savez(folder / "test.npz", **arrays)
    calls = []
    real = scenes.generate_split
    monkeypatch.setattr(scenes, "generate_split", lambda *a: calls.append(1) or real(*a))
    data.load("scenes", split="test", seed=11, size=32, **SMALL)
    assert calls == [1]


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="splits"):
        data.load("scenes", split="holdout")


def test_groups_record_each_images_background_photograph_and_follow_subsets():
    ds = data.load("scenes", split="test", size=32, **SMALL)
    photos = load_photos()
    assert ds.groups is not None and ds.groups.shape == (len(ds),)
    assert ds.groups.min() >= 0 and ds.groups.max() < len(photos)
    for i in (0, 7):
        *_, bg = scenes.make_scene_with_group(0, "test", i, 32, photos)
        assert ds.groups[i] == bg
    assert len(set(ds.groups.tolist())) > 3, "backgrounds come from many photographs"
    sub = ds.subset([5, 2])
    assert sub.groups.tolist() == [ds.groups[5], ds.groups[2]]


def test_generator_version_2_keeps_version_1_images_masks_and_labels_byte_identical():
    # fingerprint of images/masks/labels produced by GENERATOR_VERSION 1 (before groups existed)
    from qbench.data.cache import array_fingerprint

    cfg = scenes.ScenesConfig(seed=0, size=32, n_train=50, n_val=10, n_test=30)
    arrays = scenes.generate_split(cfg, "test", load_photos())
    old = {k: arrays[k] for k in ("images", "masks", "labels")}
    assert array_fingerprint(old) == (
        "e697a1f76f4fe5a7b3f1cf95d340ff0a95c143945bdc862683641670d27b4703")
