"""The natural photographs qbench builds its embedded datasets from.

They ship inside packages qbench already installs (scikit-image, scikit-learn, matplotlib and
pyiqa), so nothing is downloaded. The list is fixed and ordered: the ``scenes`` arrays and the
``refs`` set depend on it, and the cache fingerprint includes each file's sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from qbench.errors import QbenchError


@dataclass(frozen=True)
class PhotoSource:
    key: str
    package: str  # the installed distribution that ships the file
    relpath: str  # path relative to the package folder (or site-packages for pyiqa data)
    licence: str
    origin: str


SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("astronaut", "skimage", "data/astronaut.png", "public domain",
                "NASA portrait of Eileen Collins, via scikit-image"),
    PhotoSource("camera", "skimage", "data/camera.png", "CC0",
                "cameraman, photographer Lav Varshney, via scikit-image"),
    PhotoSource("brick", "skimage", "data/brick.png", "CC0",
                "Bricks25 texture, CC0Textures, via scikit-image"),
    PhotoSource("grass", "skimage", "data/grass.png", "CC0",
                "Grass texture, CC0Textures, via scikit-image"),
    PhotoSource("gravel", "skimage", "data/gravel.png", "CC0",
                "Gravel04 texture, CC0Textures, via scikit-image"),
    PhotoSource("coins", "skimage", "data/coins.png", "no known copyright restrictions",
                "Greek coins, Brooklyn Museum collection, via scikit-image"),
    PhotoSource("chelsea", "skimage", "data/chelsea.png", "CC0",
                "Chelsea the cat, photographer Stefan van der Walt, via scikit-image"),
    PhotoSource("coffee", "skimage", "data/coffee.png", "CC0",
                "coffee cup, photographer Rachel Michetti, via scikit-image"),
    PhotoSource("hubble", "skimage", "data/hubble_deep_field.jpg", "public domain",
                "Hubble eXtreme Deep Field, NASA, via scikit-image"),
    PhotoSource("ihc", "skimage", "data/ihc.png", "no known copyright restrictions",
                "immunohistochemistry micrograph, CMMI, via scikit-image"),
    PhotoSource("retina", "skimage", "data/retina.jpg", "CC0",
                "human retina fundus photograph (Häggström), via scikit-image"),
    PhotoSource("rocket", "skimage", "data/rocket.jpg", "public domain",
                "Falcon 9 launch, SpaceX, via scikit-image"),
    PhotoSource("china", "sklearn", "datasets/images/china.jpg", "CC BY 2.0",
                "Summer Palace, Flickr user danielbuechele, via scikit-learn"),
    PhotoSource("flower", "sklearn", "datasets/images/flower.jpg", "CC BY 2.0",
                "flower, Flickr user vultilion, via scikit-learn"),
    PhotoSource("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                "public domain", "portrait of Grace Hopper, US Navy, via matplotlib"),
    PhotoSource("tid_i03", "pyiqa", "../ResultsCalibra/ref_dir/I03.bmp",
                "free for research (Kodak PhotoCD image via TID2013)",
                "TID2013 reference I03, shipped in the pyiqa wheel"),
    PhotoSource("tid_i04", "pyiqa", "../ResultsCalibra/ref_dir/I04.bmp",
                "free for research (Kodak PhotoCD image via TID2013)",
                "TID2013 reference I04, shipped in the pyiqa wheel"),
    PhotoSource("tid_i06", "pyiqa", "../ResultsCalibra/ref_dir/I06.bmp",
                "free for research (Kodak PhotoCD image via TID2013)",
                "TID2013 reference I06, shipped in the pyiqa wheel"),
    PhotoSource("tid_i08", "pyiqa", "../ResultsCalibra/ref_dir/I08.bmp",
                "free for research (Kodak PhotoCD image via TID2013)",
                "TID2013 reference I08, shipped in the pyiqa wheel"),
    PhotoSource("tid_i19", "pyiqa", "../ResultsCalibra/ref_dir/I19.bmp",
                "free for research (Kodak PhotoCD image via TID2013)",
                "TID2013 reference I19, shipped in the pyiqa wheel"),
)


@dataclass(frozen=True)
class Photo:
    source: PhotoSource
    path: Path
    sha256: str
    array: np.ndarray = field(repr=False, compare=False)  # HxWx3 uint8

    @property
    def key(self) -> str:
        return self.source.key


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise QbenchError(f"package {package!r} is not installed; it ships photographs qbench "
                          f"needs (run `make install`)")
    return Path(spec.origin).parent


def source_path(src: PhotoSource) -> Path:
    return (_package_dir(src.package) / src.relpath).resolve()


@cache
def load_photos() -> list[Photo]:
    """All photographs of :data:`SOURCES`, decoded to RGB uint8, in list order."""
    photos = []
    for src in SOURCES:
        path = source_path(src)
        if not path.is_file():
            raise QbenchError(f"photograph {src.key!r} missing: expected {path} from the "
                              f"installed {src.package!r} package (reinstall it)")
        data = path.read_bytes()
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        arr.setflags(write=False)
        photos.append(Photo(src, path, hashlib.sha256(data).hexdigest(), arr))
    return photos
