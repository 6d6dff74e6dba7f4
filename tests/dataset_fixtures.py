"""Tiny copies of real dataset releases, written in exactly their official layouts."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def _png(path: Path, seed: int, size=(24, 24), suffix_mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr, suffix_mode).save(path)


def write_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": 4}, f)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 b"labels": [0, 1, 2, 9], b"batch_label": name.encode(),
                 b"filenames": [f"{name}_{k}.png".encode() for k in range(4)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def write_imagefolder(root: Path) -> Path:
    for k, cls in enumerate(["n01440764", "n01443537"]):
        for j in range(3):
            _png(root / "val" / cls / f"ILSVRC2012_val_{k}{j}.JPEG.png", k * 10 + j)
    return root


def write_kadid(root: Path) -> Path:
    folder = root / "kadid10k"
    images = folder / "images"
    rows = []
    for r in (1, 2):
        _png(images / f"I{r:02d}.png", r)
        for t in (1, 11):
            for lev in (1, 2, 3):
                name = f"I{r:02d}_{t:02d}_{lev:02d}.png"
                _png(images / name, 100 * r + 10 * t + lev)
                rows.append([name, f"I{r:02d}.png", f"{5 - lev * 0.9:.3f}", "0.1"])
    with open(folder / "dmos.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        w.writerows(rows)
    return root


def write_tid2013(root: Path) -> Path:
    lines, stds = [], []
    for r in (1, 25):
        _png(root / "reference_images" / f"I{r:02d}.BMP", r)
        for t in (1, 8, 24):
            for lev in (1, 5):
                name = f"i{r:02d}_{t:02d}_{lev}.bmp"
                _png(root / "distorted_images" / name, r * 100 + t * 10 + lev)
                lines.append(f"{6.5 - lev:.5f} {name}")
                stds.append("0.12345")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    (root / "mos_std.txt").write_text("\n".join(stds) + "\n")
    return root


def write_live(root: Path) -> Path:
    counts = {"jp2k": 3, "jpeg": 2, "wn": 2, "gblur": 2, "fastfading": 2}
    refs = ["bikes.bmp", "house.bmp"]
    for r in refs:
        _png(root / "refimgs" / r, len(r))
    dmos, orgs, names = [], [], []
    k = 0
    for folder, n in counts.items():
        for i in range(1, n + 1):
            _png(root / folder / f"img{i}.bmp", k)
            names.append(refs[k % 2])
            orgs.append(1 if i == n else 0)  # the last of each folder is a reference copy
            dmos.append(0.0 if i == n else 20.0 + 5 * k)
            k += 1
    scipy.io.savemat(root / "dmos.mat", {"dmos": np.array([dmos]), "orgs": np.array([orgs])})
    cell = np.empty((1, len(names)), dtype=object)
    for j, n in enumerate(names):
        cell[0, j] = n
    scipy.io.savemat(root / "refnames_all.mat", {"refnames_all": cell})
    return root


def write_csiq(root: Path) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "all_by_image"
    ws = wb.active
    ws.append(["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
    tokens = {"noise": ("awgn", "AWGN"), "jpeg 2000": ("jpeg2000", "jpeg2000"),
              "blur": ("blur", "BLUR")}
    for image in (1600, "aerial_city"):
        _png(root / "src_imgs" / f"{image}.png", len(str(image)))
        for idx, (kind, (folder, token)) in enumerate(tokens.items(), start=1):
            for lev in (1, 2):
                _png(root / "dst_imgs" / folder / f"{image}.{token}.{lev}.png", idx * 10 + lev)
                ws.append([image, idx, kind, lev, 0.05, 0.1 * lev + 0.01 * idx])
    wb.save(root / "csiq.DMOS.xlsx")
    return root


def write_koniq(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "koniq10k_scores_and_distributions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD",
                    "MOS_zscore"])
        for k in range(4):
            name = f"{826373 + k}.jpg"
            _png(root / "1024x768" / name, k)
            w.writerow([name, 1, 2, 3, 4, 5, 15, 3.1 + 0.2 * k, 0.8, 55.0 + k])
    return root


WRITERS = {"cifar10": write_cifar10, "imagefolder": write_imagefolder, "kadid10k": write_kadid,
           "tid2013": write_tid2013, "live": write_live, "csiq": write_csiq,
           "koniq10k": write_koniq}
