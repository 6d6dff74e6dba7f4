"""Tiny image files (good and hostile) and a file-backed dataset for the reliability tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from qbench.data.base import ImageSet
from qbench.data.imagefile import read_image


def rgb(path: Path, seed: int, size: tuple[int, int] = (16, 16)) -> Path:
    """A random 8-bit RGB PNG of ``size`` (width, height)."""
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def truncated(path: Path, seed: int) -> Path:
    rgb(path, seed)
    path.write_bytes(path.read_bytes()[:60])
    return path


def file_set(paths: list[Path], name: str = "files") -> ImageSet:
    """An image set read from ``paths`` (ids are the file names)."""
    return ImageSet(name=name, split="all", item_ids=[p.name for p in paths],
                    reader=lambda i: read_image(paths[i]))


def mixed_folder(folder: Path, n: int = 12) -> list[Path]:
    """``n`` files in which every batch of four has one bad file and one grayscale file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img{i:02d}.png"
        if i % 4 == 1:
            truncated(p, i) if i % 8 == 1 else p.write_bytes(b"")
        elif i % 4 == 2:
            gray = np.random.default_rng(i).integers(0, 256, (16, 16), dtype=np.uint8)
            Image.fromarray(gray, "L").save(p)
        else:
            rgb(p, i)
        paths.append(p)
    return paths


def kill_resume_job(store_dir: str | Path, images: str | Path) -> None:
    """The scoring run the kill/resume tests interrupt: 12 files (some bad, some grayscale),
    clean + gaussian noise at two levels, an NR, an FR and an always-too-small metric."""
    from qbench.engine import grid, score
    from qbench.store import Store
    from tests.toy_metrics import MeanAbsError, MeanBrightness, NeedsBigInputs

    paths = sorted(Path(images).glob("*.png"))
    metrics = [MeanBrightness(), MeanAbsError(), NeedsBigInputs()]
    store = Store(store_dir)
    run = store.begin_run({"job": "kill-resume"}, seeds=[3])
    store.record_scorers(run, [{"name": m.info.name} for m in metrics])
    s = score(store, run, file_set(paths), grid(["gaussian_noise"], [1, 3]), metrics, seed=3,
              batch_size=4, progress=False, workers=1)
    store.end_run(run, rows=s.written)


def concurrent_job(store_dir: str | Path, images: str | Path, job: str, delay: float,
                   go: str | Path | None = None) -> None:
    """A scoring run that waits for the file ``go`` (so that several start together)."""
    import time

    from qbench.engine import grid, score
    from qbench.store import Store
    from tests.toy_metrics import MeanAbsError, MeanBrightness

    paths = sorted(Path(images).glob("*.png"))
    store = Store(store_dir)
    while go is not None and not Path(go).exists():
        time.sleep(0.02)
    run = store.begin_run({"job": job})
    s = score(store, run, file_set(paths), grid(["gaussian_noise", "contrast"], [2]),
              [MeanBrightness(delay=delay), MeanAbsError()], seed=1, batch_size=4,
              progress=False, workers=1)
    store.end_run(run, rows=s.written)
