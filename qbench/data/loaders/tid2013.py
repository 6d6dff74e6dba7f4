"""TID2013: ``mos_with_names.txt`` ("5.51429 i01_01_1.bmp"), ``mos_std.txt``,
``distorted_images/`` and ``reference_images/`` (I01.BMP ... I25.BMP).

MOS 0-9, higher is better. Name ``i01_07_3`` = reference 01, distortion 07, level 3.

Checked as read (a DatasetFormatError naming the file and line otherwise): every MOS is finite
and inside [0, 9], no image is listed twice, the type is 1-24 and the level 1-5; images are
looked up in ``distorted_images/`` and ``reference_images/`` themselves, never in sub-folders.
"""

from __future__ import annotations

from pathlib import Path

from qbench.data.base import LabelSpec
from qbench.data.loaders.common import (
    Unique,
    check_level,
    file_index,
    make_iqa_set,
    parse_float,
    read_text,
    require_dir,
    resolve,
)
from qbench.errors import DatasetFormatError

PUBLISHED = "https://www.ponomarenko.info/tid2013.htm (tid2013.rar)"
LABEL = LabelSpec("MOS", 0.0, 9.0, higher_is_better=True)
LEVELS = (1, 5)
TYPES = ["additive_gaussian_noise", "additive_noise_color", "spatially_correlated_noise",
         "masked_noise", "high_frequency_noise", "impulse_noise", "quantization_noise",
         "gaussian_blur", "image_denoising", "jpeg", "jpeg2000", "jpeg_transmission_errors",
         "jpeg2000_transmission_errors", "non_eccentricity_pattern_noise",
         "local_block_wise_distortions", "mean_shift", "contrast_change",
         "change_of_color_saturation", "multiplicative_gaussian_noise", "comfort_noise",
         "lossy_compression_of_noisy_images", "color_quantization_with_dither",
         "chromatic_aberrations", "sparse_sampling_and_reconstruction"]


def load_tid2013(root: str | Path):
    root = require_dir("tid2013", Path(root).expanduser(), PUBLISHED, "mos_with_names.txt")
    dist_dir, ref_dir = root / "distorted_images", root / "reference_images"
    for d in (dist_dir, ref_dir):
        if not d.is_dir():
            raise DatasetFormatError("tid2013", str(d), "folder missing")
    dist_index, ref_index = file_index(dist_dir), file_index(ref_dir)
    lines = [ln for ln in read_text(root / "mos_with_names.txt", "tid2013").splitlines()
             if ln.strip()]
    std_path = root / "mos_std.txt"
    if std_path.exists():
        n_std = len([ln for ln in read_text(std_path, "tid2013").splitlines() if ln.strip()])
        if n_std != len(lines):
            raise DatasetFormatError("tid2013", str(std_path),
                                     f"{n_std} rows but mos_with_names.txt has {len(lines)}")
    paths, scores, refs, dists, levels, ref_paths = [], [], [], [], [], {}
    unique = Unique("tid2013")
    for n, line in enumerate(lines, start=1):
        fields = line.split()
        where = f"mos_with_names.txt line {n}"
        if len(fields) != 2:
            raise DatasetFormatError("tid2013", where, f"expected 'MOS name', got {line!r}")
        score, name = fields
        parts = Path(name).stem.split("_")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise DatasetFormatError("tid2013", where, f"image name {name!r} is not ixx_tt_l")
        unique.check(name, where, n)
        ref = parts[0].upper()
        t = int(parts[1])
        if not 1 <= t <= len(TYPES):
            raise DatasetFormatError("tid2013", where, f"distortion type {t} unknown")
        level = check_level(int(parts[2]), *LEVELS, "tid2013", where)
        paths.append(resolve(dist_index, name, "tid2013", dist_dir))
        scores.append(parse_float(score, "tid2013", where, (LABEL.low, LABEL.high)))
        refs.append(ref)
        ref_paths.setdefault(ref, resolve(ref_index, f"{ref}.bmp", "tid2013", ref_dir))
        dists.append(TYPES[t - 1])
        levels.append(level)
    return make_iqa_set("tid2013", paths, scores, LABEL, refs, dists, levels, ref_paths, root)
