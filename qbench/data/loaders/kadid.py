"""KADID-10k: ``kadid10k/dmos.csv`` (dist_img, ref_img, dmos, var) and ``kadid10k/images/``.

Distorted names are ``I01_03_05.png`` = reference 01, distortion type 03, level 05.
Despite its column name the score behaves like a MOS: 1-5, higher is better.

Checked as read (a DatasetFormatError naming ``dmos.csv`` and the line otherwise): every score
is finite and inside [1, 5], no image is listed twice, the type is 1-25 and the level 1-5, the
name's reference matches ``ref_img``; images are looked up in ``images/`` itself, never in a
sub-folder.
"""

from __future__ import annotations

from pathlib import Path

from qbench.data.base import LabelSpec
from qbench.data.loaders.common import (
    Unique,
    check_level,
    csv_rows,
    file_index,
    make_iqa_set,
    parse_float,
    require_dir,
    resolve,
)
from qbench.errors import DatasetFormatError

PUBLISHED = "https://database.mmsp-kn.de/kadid-10k-database.html (kadid10k.zip)"
LABEL = LabelSpec("DMOS", 1.0, 5.0, higher_is_better=True)
LEVELS = (1, 5)
TYPES = ["gaussian_blur", "lens_blur", "motion_blur", "color_diffusion", "color_shift",
         "color_quantization", "color_saturation_1", "color_saturation_2", "jpeg2000", "jpeg",
         "white_noise", "white_noise_color", "impulse_noise", "multiplicative_noise", "denoise",
         "brighten", "darken", "mean_shift", "jitter", "non_eccentricity_patch", "pixelate",
         "quantization", "color_block", "high_sharpen", "contrast_change"]


def load_kadid10k(root: str | Path):
    root = Path(root).expanduser()
    if (root / "kadid10k").is_dir():
        root = root / "kadid10k"
    root = require_dir("kadid10k", root, PUBLISHED, "dmos.csv")
    images = root / "images"
    index = file_index(images) if images.is_dir() else {}
    paths, scores, refs, dists, levels, ref_paths = [], [], [], [], [], {}
    unique = Unique("kadid10k")
    for n, row in csv_rows(root / "dmos.csv", "kadid10k", {"dist_img", "ref_img", "dmos"}):
        name, where = row["dist_img"].strip(), f"dmos.csv line {n}"
        parts = Path(name).stem.split("_")
        if len(parts) != 3 or not all(p.lstrip("Ii").isdigit() for p in parts):
            raise DatasetFormatError("kadid10k", where, f"image name {name!r} is not Ixx_tt_ll")
        unique.check(name, where, n)
        t, lev = int(parts[1]), check_level(int(parts[2]), *LEVELS, "kadid10k", where)
        if not 1 <= t <= len(TYPES):
            raise DatasetFormatError("kadid10k", where, f"type {t} unknown")
        ref = Path(row["ref_img"].strip()).stem.upper()
        if ref != parts[0].upper():
            raise DatasetFormatError("kadid10k", where, f"image {name!r} is not made from its "
                                     f"listed reference {row['ref_img'].strip()!r}")
        paths.append(resolve(index, name, "kadid10k", images))
        scores.append(parse_float(row["dmos"], "kadid10k", where, (LABEL.low, LABEL.high)))
        refs.append(ref)
        ref_paths.setdefault(ref, resolve(index, row["ref_img"].strip(), "kadid10k", images))
        dists.append(TYPES[t - 1])
        levels.append(lev)
    return make_iqa_set("kadid10k", paths, scores, LABEL, refs, dists, levels, ref_paths, root)
