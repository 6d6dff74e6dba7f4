from pathlib import Path

import qbench.data as data
from qbench.data.photos import SOURCES, load_photos

README = Path(__file__).resolve().parents[1] / "README.md"


def test_refs_has_at_least_fifteen_distinct_pristine_photographs():
    refs = data.load("refs", size=64)
    assert len(refs) >= 15
    assert len(set(refs.item_ids)) == len(refs)
    x = refs.batch(range(len(refs)))
    assert x.shape == (len(refs), 3, 64, 64)
    flat = x.reshape(len(refs), -1)
    assert len({tuple(v[:200].tolist()) for v in flat}) == len(refs)


def test_every_photograph_has_origin_and_licence_listed_in_the_readme():
    text = README.read_text()
    for src in SOURCES:
        assert src.licence and src.origin
        assert f"`{src.key}`" in text, f"README does not list {src.key}"


def test_photographs_load_from_installed_packages_as_rgb():
    for p in load_photos():
        assert p.array.ndim == 3 and p.array.shape[2] == 3
        assert min(p.array.shape[:2]) >= 256
