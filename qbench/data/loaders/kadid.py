"""KADID-10k: ``kadid10k/dmos.csv`` (dist_img, ref_img, dmos, var) and ``kadid10k/images/``.

Distorted names are ``I01_03_05.png`` = reference 01, distortion type 03, level 05.
Despite its column name the score behaves like a MOS: 1-5, higher is better.
"""

from __future__ import annotations

from pathlib import Path

from qbench.data.base import LabelSpec
from qbench.data.loaders.common import (
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
    for n, row in csv_rows(root / "dmos.csv", "kadid10k", {"dist_img", "ref_img", "dmos"}):
        name = row["dist_img"].strip()
        parts = Path(name).stem.split("_")
        if len(parts) != 3 or not all(p.lstrip("Ii").isdigit() for p in parts):
            raise DatasetFormatError("kadid10k", f"dmos.csv line {n}",
                                     f"image name {name!r} is not Ixx_tt_ll")
        t, lev = int(parts[1]), int(parts[2])
        if not 1 <= t <= len(TYPES):
            raise DatasetFormatError("kadid10k", f"dmos.csv line {n}", f"type {t} unknown")
        paths.append(resolve(index, name, "kadid10k", images))
        scores.append(parse_float(row["dmos"], "kadid10k", f"dmos.csv line {n}"))
        ref = Path(row["ref_img"].strip()).stem.upper()
        refs.append(ref)
        ref_paths.setdefault(ref, resolve(index, row["ref_img"].strip(), "kadid10k", images))
        dists.append(TYPES[t - 1])
        levels.append(lev)
    return make_iqa_set("kadid10k", paths, scores, LABEL, refs, dists, levels, ref_paths, root)
