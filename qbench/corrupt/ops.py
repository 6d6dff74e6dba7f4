"""Building blocks shared by the corruption families: filters, codecs, colour spaces, resampling.

All functions take and return Nx3xHxW (or NxCxHxW) float tensors in [0, 1] unless stated, and
run on the tensor's device; codecs (JPEG, JPEG 2000) go through Pillow on the CPU.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from qbench.errors import InvalidInputError

# How far outside [0, 1] an input value may lie (rounding of a resampled image) before it is
# refused: a 0-255 image or a shifted one is never clamped into range silently.
RANGE_TOLERANCE = 1e-3


# -- the boundary: what a corruption accepts ---------------------------------------------------
def check_images(images: Any) -> None:
    """One line saying why ``images`` is not an Nx3xHxW float tensor of finite values in [0, 1]
    on a device that holds data; nothing when it is one."""
    if not isinstance(images, torch.Tensor):
        raise InvalidInputError(f"images must be a torch.Tensor (Nx3xHxW float in [0, 1]), got "
                                f"{type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise InvalidInputError(f"images must be Nx3xHxW, got {tuple(images.shape)}")
    if images.device.type == "meta":
        raise InvalidInputError("images are on the 'meta' device, which holds no values: "
                                "corrupt tensors on cpu or cuda")
    if not images.is_floating_point():
        raise InvalidInputError(f"images must be a float tensor in [0, 1], got {images.dtype} "
                                "(convert with .float() / 255)")
    if images.numel() == 0:
        return
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        nan = int(torch.isnan(images).sum())
        inf = int((~finite).sum()) - nan
        kinds = " and ".join(f"{k} {what}" for k, what in ((nan, "NaN"), (inf, "inf")) if k)
        raise InvalidInputError(f"images hold {kinds} values; only finite values in [0, 1] "
                                "can be corrupted")
    lo, hi = (float(v) for v in torch.aminmax(images.detach()))
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = " (0-255 values? divide by 255)" if hi > 2 else ""
        raise InvalidInputError(f"image values lie in [{lo:.4g}, {hi:.4g}], outside [0, 1]{hint}")


def _integer(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def severities(severity: Any, n: int) -> torch.Tensor:
    """``severity`` (one integer, or one per image) as ``n`` int64 values on the CPU; anything
    that is not an integer (2.5, True, "3", a float tensor) is refused, never truncated."""
    shown = f"{type(severity).__name__} {severity!r}".replace("\n", " ")[:80]
    refused = InvalidInputError(f"severity must be an integer or one integer per image, got "
                                f"{shown}")
    if isinstance(severity, torch.Tensor | np.ndarray):
        t = torch.as_tensor(severity) if isinstance(severity, np.ndarray) else severity
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex() or t.is_meta:
            raise refused
        sev = t.detach().to("cpu", torch.int64).reshape(-1)
    elif _integer(severity):
        sev = torch.tensor([int(severity)], dtype=torch.int64)
    elif isinstance(severity, list | tuple) and severity and all(map(_integer, severity)):
        sev = torch.tensor([int(v) for v in severity], dtype=torch.int64)
    else:
        raise refused
    sev = sev.expand(n) if sev.numel() == 1 else sev
    if sev.numel() != n:
        raise InvalidInputError(f"got {sev.numel()} severities for {n} images")
    return sev


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, device=None,
                      dtype=torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, radius ceil(truncate * sigma) (scipy's rule)."""
    radius = max(1, int(truncate * float(sigma) + 0.5))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return k / k.sum()


def _pad_index(n: int, pad: int, mode: str, device) -> torch.Tensor:
    """Source indices of a length-``n`` axis padded by ``pad`` on both sides.

    ``nearest`` repeats the edge; ``reflect`` mirrors including the edge sample (scipy's and
    skimage's 'reflect', d c b a | a b c d); ``mirror`` mirrors excluding it (OpenCV's
    BORDER_REFLECT_101, torch's 'reflect'). Any pad length works, even beyond the axis size.
    """
    i = torch.arange(-pad, n + pad, device=device)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if n == 1:
        return torch.zeros_like(i)
    if mode == "reflect":
        i = i % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "mirror":
        i = i % (2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad2d(x: torch.Tensor, py: int, px: int, mode: str) -> torch.Tensor:
    """Pad the last two axes of ``x`` by (py, px) with :func:`_pad_index`'s modes."""
    if py:
        x = x.index_select(-2, _pad_index(x.shape[-2], py, mode, x.device))
    if px:
        x = x.index_select(-1, _pad_index(x.shape[-1], px, mode, x.device))
    return x


FFT_TAPS = 400  # from this many taps on (elastic's sigma ~170 px), 1-D filtering uses the FFT


def _periodic_filter_last_axis(x: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
    """Exact correlation under a mirror border for kernels longer than the axis.

    A mirrored signal is periodic (period 2n for 'reflect', 2n - 2 for 'mirror'), so folding the
    taps modulo the period and correlating circularly over one period gives the same result as
    padding by the full kernel radius -- with an FFT of 2n points instead of n + 2 x radius.
    """
    n = x.shape[-1]
    ext = torch.cat([x, x.flip(-1)], -1) if mode == "reflect" else \
        torch.cat([x, x.flip(-1)[..., 1:-1]], -1)
    period = ext.shape[-1]
    r = k.numel() // 2
    folded = torch.zeros(period, dtype=torch.float64)
    folded.index_add_(0, torch.arange(-r, r + 1) % period, k.double().cpu())
    # correlation: y[i] = sum_j folded[j] * ext[i + j]  ->  conj spectrum of the taps
    spec = torch.fft.rfft(ext) * torch.fft.rfft(folded.to(x)).conj()
    return torch.fft.irfft(spec, n=period)[..., :n]


def _filter_last_axis(x: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate the last axis of NxCxHxW ``x`` with odd-length taps ``k`` (same size out)."""
    r, c = k.numel() // 2, x.shape[1]
    if r >= x.shape[-1] and mode in ("reflect", "mirror") and x.shape[-1] > 1:
        return _periodic_filter_last_axis(x, k, mode)
    y = pad2d(x, 0, r, mode)
    if k.numel() < FFT_TAPS:  # depthwise conv2d is the fastest CPU path below this
        return F.conv2d(y, k.to(y).view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    n = _fast_length(y.shape[-1] + k.numel())
    spec = torch.fft.rfft(y, n=n) * torch.fft.rfft(k.flip(0).to(y), n=n)
    return torch.fft.irfft(spec, n=n)[..., 2 * r : 2 * r + x.shape[-1]]


def _fast_length(n: int) -> int:
    """The smallest 5-smooth number >= n (FFT sizes with only factors 2, 3, 5 are fast)."""
    while True:
        m = n
        for f in (2, 3, 5):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 1


def separable_filter(x: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor,
                     mode: str = "nearest") -> torch.Tensor:
    """Correlate each channel with ``ky`` (vertical) then ``kx`` (horizontal) taps."""
    y = _filter_last_axis(x, kx, mode)
    return _filter_last_axis(y.transpose(-1, -2), ky, mode).transpose(-1, -2).contiguous()


CV2_BORDER = {"nearest": 1, "reflect": 2, "mirror": 4}  # cv2.BORDER_REPLICATE/REFLECT/_101
# CPU tensors take OpenCV paths where OpenCV is faster; tests turn this off to check that the
# torch paths (used on GPUs) give the same images.
USE_OPENCV = True


def opencv_path(x: torch.Tensor) -> bool:
    """Whether ``x`` should be processed with OpenCV (a CPU tensor, OpenCV paths enabled)."""
    return USE_OPENCV and x.device.type == "cpu"


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 4.0,
                  mode: str = "nearest") -> torch.Tensor:
    """Gaussian blur with scipy.ndimage's taps; default border 'nearest' as in skimage.

    On the CPU it runs OpenCV's sepFilter2D per image in threads (identical taps and borders,
    several times faster than a depthwise convolution); elsewhere it convolves in torch.
    """
    if sigma <= 0:
        return x.clone()
    k = gaussian_kernel1d(sigma, truncate, x.device, torch.float32)
    if opencv_path(x) and k.numel() // 2 < min(x.shape[-2:]):
        import cv2

        taps = k.numpy()
        return map_hwc(x, lambda a: cv2.sepFilter2D(a, -1, taps, taps,
                                                    borderType=CV2_BORDER[mode]))
    return separable_filter(x, k.to(x.dtype), k.to(x.dtype), mode)


def map_hwc(x: torch.Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    """Apply ``fn`` to every image of a CPU NxCxHxW tensor as an HxWxC float32 array (the
    layout OpenCV wants), on the thread pool, and stack the results back."""
    arrays = x.detach().to(torch.float32).permute(0, 2, 3, 1).contiguous().numpy()
    out = np.stack(pmap(fn, arrays))
    if out.ndim == 3:  # OpenCV drops a single channel axis
        out = out[..., None]
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(x.dtype)


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """Correlate every channel with a 2-D ``kernel`` (odd sides); border as OpenCV's default.

    Kernels of 13x13 and more go through the FFT (as OpenCV's filter2D does for large kernels).
    """
    c = x.shape[1]
    kh, kw = kernel.shape
    y = pad2d(x, kh // 2, kw // 2, mode)
    if kh * kw < 150:
        return F.conv2d(y, kernel.to(y).view(1, 1, kh, kw).expand(c, 1, kh, kw), groups=c)
    ph, pw = y.shape[-2:]
    spec = torch.fft.rfft2(y) * torch.fft.rfft2(kernel.flip(0, 1).to(y), s=(ph, pw))
    return torch.fft.irfft2(spec, s=(ph, pw))[..., kh - 1 :, kw - 1 :]


_POOL_PREFIX = "qbench-corrupt"


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1,
                                                     torch.get_num_threads())),
                              thread_name_prefix=_POOL_PREFIX)


def pmap(fn: Callable[..., Any], *iterables: Iterable) -> list:
    """``[fn(*args) ...]`` over the images of a batch on a thread pool (numpy, OpenCV and torch
    release the GIL in their kernels); results keep their order, so outputs stay deterministic.
    Called from inside a pool worker it runs serially, so nested use cannot deadlock."""
    if threading.current_thread().name.startswith(_POOL_PREFIX):
        return list(map(fn, *iterables))
    return list(_pool().map(fn, *iterables))


def to_uint8_array(img: torch.Tensor) -> np.ndarray:
    """3xHxW float [0, 1] -> HxWx3 uint8 (rounded)."""
    return img.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def from_uint8_array(arr: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float [0, 1] on ``like``'s device and dtype."""
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).to(like) / 255.0


def to_uint8_batch(x: torch.Tensor) -> np.ndarray:
    """Nx3xHxW float [0, 1] -> NxHxWx3 uint8 (rounded), in one pass."""
    return x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8) \
        .permute(0, 2, 3, 1).contiguous().cpu().numpy()


def from_uint8_batch(arrays: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """NxHxWx3 uint8 -> Nx3xHxW float [0, 1] on ``like``'s device and dtype."""
    t = torch.from_numpy(np.ascontiguousarray(arrays)).to(like.device)
    return t.permute(0, 3, 1, 2).to(like.dtype).div_(255.0)


def pil_roundtrip(x: torch.Tensor, fmt: str, **save_options) -> torch.Tensor:
    """Encode every image with Pillow in ``fmt`` and decode it again (a real codec)."""

    def one(arr: np.ndarray) -> np.ndarray:  # Pillow releases the GIL while coding
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format=fmt, **save_options)
        buf.seek(0)
        with Image.open(buf) as dec:
            return np.asarray(dec.convert("RGB"))

    return from_uint8_batch(np.stack(pmap(one, to_uint8_batch(x))), x)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """A libjpeg round trip at ``quality`` (4:2:0 chroma subsampling, Pillow's default)."""
    return pil_roundtrip(x, "JPEG", quality=int(quality))


def jpeg2000(x: torch.Tensor, bpp: float) -> torch.Tensor:
    """An OpenJPEG round trip at ``bpp`` bits per pixel (compression ratio 24 / bpp)."""
    return pil_roundtrip(x, "JPEG2000", quality_mode="rates", quality_layers=[24.0 / bpp],
                         irreversible=True)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB -> HSV, all channels in [0, 1] (hue as a fraction of a turn), like skimage."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    safe = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, ((g - b) / safe) % 6,
                    torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV -> RGB, inverse of :func:`rgb_to_hsv`."""
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6)
    f = h * 6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    r = torch.stack([v, q, p, p, t, v], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    g = torch.stack([t, v, v, q, p, p], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    b = torch.stack([p, p, t, v, v, q], 1).gather(1, i.unsqueeze(1)).squeeze(1)
    return torch.stack([r, g, b], 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (OpenCV's RGB2GRAY weights), Nx1xHxW."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)
