"""``qbench bench corrupt``: qbench's corruptions against the PyPI ``imagecorruptions`` package.

Same images (the ``refs`` photographs at 224 px, repeated to ``n``), every ImageNet-C
corruption at severities 1-5, the two implementations alternated per (corruption, severity)
so machine noise hits both alike. qbench corrupts the batch at once; the baseline loops over
images as its API requires. Corruptions the baseline cannot run on this machine (numpy 2 /
scikit-image 0.26 break three of them) are timed for qbench only and left out of the ratio.
``--fidelity`` instead compares outputs: PSNR between the two implementations on the same image
for deterministic corruptions, and for random ones the mean PSNR against the clean image of
each implementation (summary statistics must agree, pixels cannot).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

import qbench.corrupt as corrupt
import qbench.data as data
from qbench.corrupt.imagenet_c import BENCHMARK, EXTRA
from qbench.errors import QbenchError

NAMES = BENCHMARK + EXTRA


def _baseline():
    """The ``imagecorruptions`` corrupt function, or a clear error on how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from imagecorruptions import corrupt as ic_corrupt
    except ImportError as exc:
        raise QbenchError("the baseline needs the bench extra: pip install -c constraints.txt "
                          f"-e '.[bench]' (imagecorruptions with setuptools<81): {exc}") from None
    return ic_corrupt


def bench_images(n: int, size: int = 224) -> torch.Tensor:
    refs = data.load("refs", size=size)
    idx = [i % len(refs) for i in range(n)]
    return refs.batch(idx)


def _baseline_run(fn, arrays: list[np.ndarray], name: str, severity: int) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [fn(a, corruption_name=name, severity=severity) for a in arrays]


@dataclass
class CorruptionTiming:
    name: str
    qbench_s: float = 0.0
    baseline_s: float | None = 0.0
    baseline_error: str = ""

    @property
    def speedup(self) -> float | None:
        if not self.baseline_s or not self.qbench_s:
            return None
        return self.baseline_s / self.qbench_s


@dataclass
class BenchResult:
    n_images: int
    size: int
    device: str
    timings: list[CorruptionTiming] = field(default_factory=list)

    @property
    def aggregate_speedup(self) -> float:
        both = [t for t in self.timings if t.speedup is not None]
        return sum(t.baseline_s for t in both) / sum(t.qbench_s for t in both)

    def as_dict(self) -> dict:
        return {"n_images": self.n_images, "size": self.size, "device": self.device,
                "severities": [1, 2, 3, 4, 5],
                "aggregate_speedup": round(self.aggregate_speedup, 3),
                "aggregate_over": [t.name for t in self.timings if t.speedup is not None],
                "per_corruption": {t.name: {"qbench_s": round(t.qbench_s, 4),
                                            "baseline_s": None if t.baseline_s is None
                                            else round(t.baseline_s, 4),
                                            "speedup": None if t.speedup is None
                                            else round(t.speedup, 3),
                                            "baseline_error": t.baseline_error}
                                   for t in self.timings}}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_speed(n: int = 64, size: int = 224, device: str = "cpu", names=NAMES,
              progress: bool = True, baseline=None) -> BenchResult:
    """Time every corruption x severity for qbench and the baseline, alternating.

    ``baseline(image_uint8_hwc, corruption_name=, severity=)`` defaults to imagecorruptions'.
    """
    fn = baseline or _baseline()
    x = bench_images(n, size)
    arrays = [(img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for img in x]
    xd = x.to(device)
    for name in names:  # warm-up: imports, numba cache, codec libraries
        corrupt.apply(xd[:2], name, 1)
    _sync(device)
    result = BenchResult(n, size, device)
    for name in names:
        t = CorruptionTiming(name)
        for severity in range(1, 6):
            start = time.perf_counter()
            corrupt.apply(xd, name, severity)
            _sync(device)
            t.qbench_s += time.perf_counter() - start
            if t.baseline_s is None:
                continue
            start = time.perf_counter()
            try:
                _baseline_run(fn, arrays, name, severity)
            except Exception as exc:  # the baseline is broken for some corruptions here
                t.baseline_s, t.baseline_error = None, f"{type(exc).__name__}: {exc}"[:200]
                continue
            t.baseline_s += time.perf_counter() - start
        result.timings.append(t)
        if progress:
            ratio = f"{t.speedup:6.1f}x" if t.speedup else "   n/a "
            print(f"  {name:18s} qbench {t.qbench_s:7.3f}s  baseline "
                  f"{t.baseline_s if t.baseline_s is not None else float('nan'):7.3f}s  "
                  f"{ratio} {t.baseline_error[:60]}", flush=True)
    return result


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of 8-bit images, capped at 99 dB (identical images) so means stay finite."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else min(99.0, 10 * np.log10(255.0**2 / mse))


def run_fidelity(n: int = 16, size: int = 224, names=NAMES, baseline=None,
                 device: str = "cpu") -> dict:
    """Per corruption and severity: pixel PSNR (deterministic ones) or clean-PSNR agreement
    (qbench corrupts on ``device``; the outputs are compared on the CPU)."""
    fn = baseline or _baseline()
    x = bench_images(n, size)
    clean = [(img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for img in x]
    report = {}
    for name in names:
        info = corrupt.info(name)
        rows = []
        for severity in range(1, 6):
            ours = [(img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                    for img in corrupt.apply(x.to(device), name, severity).cpu()]
            try:
                theirs = [np.asarray(t).astype(np.uint8) for t in
                          _baseline_run(fn, clean, name, severity)]
            except Exception as exc:
                rows.append({"severity": severity, "baseline_error":
                             f"{type(exc).__name__}: {exc}"[:200]})
                continue
            row = {"severity": severity,
                   "clean_psnr_qbench": float(np.mean([_psnr(c, o) for c, o in
                                                       zip(clean, ours, strict=True)])),
                   "clean_psnr_baseline": float(np.mean([_psnr(c, t) for c, t in
                                                         zip(clean, theirs, strict=True)]))}
            if not info.random:
                row["psnr_qbench_vs_baseline"] = float(np.mean([
                    _psnr(o, t) for o, t in zip(ours, theirs, strict=True)]))
            rows.append(row)
        report[name] = {"random": info.random, "severities": rows}
    return report
