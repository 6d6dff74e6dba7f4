"""KADID-10k distortions (Lin, Hosu & Saupe, QoMEX 2019): 25 types x 5 levels, ``kadid:<type>``.

Level tables are those of the released MATLAB generator (``imdist_generator.m`` of the
KADID-10k / KADIS-700k code); each operation re-implements the matching MATLAB function.
Where the original is unavailable or needs MATLAB-only tools (DnCNN for ``denoise``,
``multithresh`` for ``quantization``, ``rgb2ind`` for ``color_quantization``) a close stand-in
is used; ``docs/corruptions-kadid.md`` lists every choice and deviation.

KADID images are 512x384, so spatial parameters (blur radii, shift distances, patch sizes) are
scaled by ``min(H, W) / 384``; intensity, colour, noise and codec parameters are not. MATLAB's
final min-max renormalisation (``mapmm``) is not applied: outputs are clamped to [0, 1] instead,
so a corrupted image keeps the clean image's range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.interpolate import CubicSpline
from scipy.special import ive

from qbench.corrupt import ops
from qbench.corrupt.registry import Corruption, register

TABLE = "kadid"
REFERENCE_SIDE = 384  # KADID-10k images are 512x384

Gens = Sequence[torch.Generator]

# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _randn(x: torch.Tensor, g: torch.Generator, *shape: int) -> torch.Tensor:
    """Standard normal draws from ``g`` on the CPU, moved to ``x``'s device and dtype."""
    return torch.randn(shape, generator=g, dtype=torch.float32).to(x)


def _rand(x: torch.Tensor, g: torch.Generator, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) draws from ``g`` on the CPU, moved to ``x``'s device and dtype."""
    return torch.rand(shape, generator=g, dtype=torch.float32).to(x)


def _gauss_taps(sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Discrete-Gaussian taps e^-t I_n(t), t = sigma^2, over MATLAB's radius ceil(2 sigma)."""
    if sigma <= 0:
        return torch.ones(1, device=device, dtype=dtype)
    radius = max(1, math.ceil(2 * sigma))
    taps = ive(np.arange(-radius, radius + 1), sigma * sigma)
    return torch.tensor(taps / taps.sum(), device=device, dtype=dtype)


def _each(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn`` on every 1xCxHxW image alone, so results never depend on the rest of the batch."""
    return torch.cat([fn(x[k : k + 1]) for k in range(x.shape[0])])


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (discrete Gaussian, replicate borders) that stays distinct for small sigma."""
    if sigma <= 0:
        return x.clone()
    k = _gauss_taps(sigma, x.device, x.dtype)
    c, r = x.shape[1], k.numel() // 2
    kx, ky = k.view(1, 1, 1, -1).expand(c, 1, 1, -1), k.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def one(img: torch.Tensor) -> torch.Tensor:
        """Horizontal then vertical pass over one image."""
        y = F.conv2d(F.pad(img, (r, r, 0, 0), mode="replicate"), kx, groups=c)
        return F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), ky, groups=c)

    return _each(one, x)


def _conv(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Correlate every channel with a 2-D numpy kernel, replicate borders."""
    if kernel.shape == (1, 1):
        return x.clone()
    kh, kw = kernel.shape
    c = x.shape[1]
    k = torch.as_tensor(kernel, dtype=x.dtype, device=x.device).view(1, 1, kh, kw)
    pad = (kw // 2, kw // 2, kh // 2, kh // 2)
    return _each(lambda img: F.conv2d(F.pad(img, pad, mode="replicate"),
                                      k.expand(c, 1, kh, kw), groups=c), x)


def _minmax(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max stretch to [0, 1] (MATLAB ``mapmm``); constant images are left alone."""
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), x)


def _spline_curve(x: torch.Tensor, knots_x: Sequence[float],
                  knots_y: Sequence[float]) -> torch.Tensor:
    """MATLAB ``curves``: a not-a-knot cubic spline through the knots (a parabola for 3), clamped."""
    cs = CubicSpline(np.asarray(knots_x, float), np.asarray(knots_y, float), bc_type="not-a-knot")
    breaks = torch.as_tensor(cs.x, dtype=x.dtype, device=x.device)
    coef = torch.as_tensor(cs.c, dtype=x.dtype, device=x.device)  # (4, pieces)
    idx = torch.bucketize(x.contiguous(), breaks[1:-1], right=True)
    dx = x - breaks[idx]
    y = coef[0][idx]
    for row in coef[1:]:
        y = y * dx + row[idx]
    return y.clamp(0, 1)


def _curve1(x: torch.Tensor, mid: float) -> torch.Tensor:
    """Tone curve through (0, 0), (0.5, ``mid``), (1, 1)."""
    return _spline_curve(x, (0, 0.5, 1), (0, mid, 1))


# --------------------------------------------------------------------------------------------
# Colour spaces (sRGB D65, as MATLAB's rgb2lab / lab2rgb and rgb2ycbcr / ycbcr2rgb)
# --------------------------------------------------------------------------------------------

_RGB2XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754], dtype=torch.float64)
_YCBCR = torch.tensor([[65.481, 128.553, 24.966],
                       [-37.797, -74.203, 112.0],
                       [112.0, -93.786, -18.214]], dtype=torch.float64) / 255.0
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0


def _mix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix to Nx3xHxW (elementwise, so exact whatever the batch)."""
    c = [x[:, j : j + 1] for j in range(3)]
    w = m.tolist()
    return torch.cat([w[i][0] * c[0] + w[i][1] * c[1] + w[i][2] * c[2] for i in range(3)], 1)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE L*a*b* (D65), L in [0, 100]."""
    lin = torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0) + 0.055) / 1.055) ** 2.4)
    xyz = _mix(lin, _RGB2XYZ) / _WHITE.to(x).view(1, 3, 1, 1)
    eps = (6 / 29) ** 3
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* (D65) -> sRGB, not clamped (out-of-gamut values stay out of [0, 1])."""
    ell, a, b = lab.unbind(1)
    fy = (ell + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], 1)
    delta = 6 / 29
    xyz = torch.where(f > delta, f**3, 3 * delta**2 * (f - 4 / 29))
    lin = _mix(xyz * _WHITE.to(lab).view(1, 3, 1, 1), torch.linalg.inv(_RGB2XYZ))
    return torch.where(lin <= 0.0031308, 12.92 * lin,
                       1.055 * lin.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> ITU-R 601 YCbCr scaled to [0, 1] (Y in [16, 235] / 255)."""
    return _mix(x, _YCBCR) + _YCBCR_OFFSET.to(x).view(1, 3, 1, 1)


def ycbcr_to_rgb(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    return _mix(y - _YCBCR_OFFSET.to(y).view(1, 3, 1, 1), torch.linalg.inv(_YCBCR))


# --------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------


def _disk_kernel(radius: float, sub: int = 32) -> np.ndarray:
    """``fspecial('disk', r)``: each tap is the area of the pixel inside the disk (supersampled)."""
    if radius < 0.5:
        return np.ones((1, 1))
    crad = math.ceil(radius - 0.5)
    side = 2 * crad + 1
    t = (np.arange(side * sub) + 0.5) / sub - crad - 0.5
    inside = (t[:, None] ** 2 + t[None, :] ** 2) <= radius**2
    k = inside.reshape(side, sub, side, sub).sum(axis=(1, 3)).astype(np.float64)
    return k / k.sum()


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """``fspecial('motion', len, angle)``: a one-pixel-wide anti-aliased line of ``len`` pixels."""
    length = max(1.0, float(length))
    half = (length - 1) / 2
    phi = math.radians(angle % 180)
    c, s = math.cos(phi), math.sin(phi)
    r = math.ceil(half) + 1
    t = np.arange(-r, r + 1, dtype=np.float64)
    x, y = np.meshgrid(t, -t, indexing="xy")  # y grows upwards, as the angle does
    along, perp = x * c + y * s, y * c - x * s
    end = np.sqrt(perp**2 + (half - np.abs(along)) ** 2)
    dist = np.where((np.hypot(x, y) >= half) & (np.abs(perp) <= 1), end, np.abs(perp))
    k = np.clip(1 - dist, 0, None)
    return k / k.sum()


# --------------------------------------------------------------------------------------------
# Scaling of spatial parameters (ratio = min(H, W) / 384)
# --------------------------------------------------------------------------------------------


def _scale_linear(p: float, ratio: float) -> float:
    """A length that scales with the image."""
    return float(p) * ratio


def _scale_motion(length: float, ratio: float) -> float:
    """Motion length: the blur extent beyond the one-pixel footprint scales with the image."""
    return 1.0 + (float(length) - 1.0) * ratio


def _scale_at(*positions: int) -> Callable[[tuple, float], tuple]:
    """Scale the given entries of a parameter tuple, leave the others."""
    def scale(p: tuple, ratio: float) -> tuple:
        """``p`` with the spatial entries multiplied by ``ratio``."""
        return tuple(v * ratio if i in positions else v for i, v in enumerate(p))
    return scale


# --------------------------------------------------------------------------------------------
# Blur
# --------------------------------------------------------------------------------------------


def gaussian_blur(x: torch.Tensor, sigma: float, gens: Gens) -> torch.Tensor:
    """``imblurgauss``: Gaussian blur of standard deviation ``sigma`` pixels."""
    return _blur(x, sigma).clamp_(0, 1)


def lens_blur(x: torch.Tensor, radius: float, gens: Gens) -> torch.Tensor:
    """``imblurlens``: convolution with a uniform disk (defocus) of ``radius`` pixels."""
    return _conv(x, _disk_kernel(radius)).clamp_(0, 1)


def motion_blur(x: torch.Tensor, length: float, gens: Gens) -> torch.Tensor:
    """``imblurmotion``: linear motion of ``length`` pixels in a random direction per image."""
    out = []
    for k, g in enumerate(gens):
        angle = float(torch.rand(1, generator=g, dtype=torch.float32)) * 180.0
        out.append(_conv(x[k : k + 1], _motion_kernel(length, angle)))
    return torch.cat(out).clamp_(0, 1)


# --------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------


def color_diffusion(x: torch.Tensor, param: tuple[float, float], gens: Gens) -> torch.Tensor:
    """``imcolordiffuse``: blur a*, b* by sigma = 1.5 amount + 2 and multiply them by amount."""
    sigma, gain = param
    lab = rgb_to_lab(x)
    ab = _blur(lab[:, 1:], sigma) * gain
    return lab_to_rgb(torch.cat([lab[:, :1], ab], 1)).clamp_(0, 1)


def _edge_mask(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smoothed, percentile-stretched gradient magnitude in [0, 1] (Nx1xHxW)."""
    gray = ops.grayscale(x)
    p = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    gx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2
    gy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    e = _minmax(_blur(torch.hypot(gx, gy), sigma))
    e = _minmax(e.clamp(0.1, 1))
    flat = e.flatten(1)
    lo = torch.quantile(flat, 0.01, dim=1).view(-1, 1, 1, 1)
    hi = torch.quantile(flat, 0.99, dim=1).view(-1, 1, 1, 1)
    return _minmax(torch.maximum(torch.minimum(e, hi), lo))


def _translate(img: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """Shift 1xCxHxW content by (dx, dy) pixels, bilinear, border values replicated."""
    _, _, h, w = img.shape
    ys = torch.arange(h, device=img.device, dtype=img.dtype) - dy
    xs = torch.arange(w, device=img.device, dtype=img.dtype) - dx
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([2 * gx / max(w - 1, 1) - 1, 2 * gy / max(h - 1, 1) - 1], -1)
    return F.grid_sample(img, grid[None], mode="bilinear", padding_mode="border",
                         align_corners=True)


def color_shift(x: torch.Tensor, param: tuple[float, float], gens: Gens) -> torch.Tensor:
    """``imcolorshift``: shift the green channel by ``amount`` px, blended in along edges."""
    amount, mask_sigma = param
    e = _edge_mask(x, mask_sigma)
    out = x.clone()
    for k, g in enumerate(gens):
        v = torch.rand(2, generator=g, dtype=torch.float32).double()
        v = v / v.norm().clamp_min(1e-12) * amount
        moved = _translate(x[k : k + 1, 1:2], float(v[0]), float(v[1]))
        out[k : k + 1, 1:2] = moved * e[k : k + 1] + x[k : k + 1, 1:2] * (1 - e[k : k + 1])
    return out.clamp_(0, 1)


def color_quantization(x: torch.Tensor, colors: int, gens: Gens) -> torch.Tensor:
    """``imcolorquantize`` (rgb2ind): ``colors``-colour palette with Floyd-Steinberg dithering."""
    out = []
    for img in x:
        im = Image.fromarray(ops.to_uint8_array(img))
        palette = im.quantize(colors=int(colors), method=Image.Quantize.MEDIANCUT)
        dithered = im.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        out.append(ops.from_uint8_array(np.asarray(dithered.convert("RGB")), x))
    return torch.stack(out)


def color_saturation_1(x: torch.Tensor, factor: float, gens: Gens) -> torch.Tensor:
    """``imcolorsaturate``: multiply HSV saturation by ``factor`` (negative flips the hue)."""
    hsv = ops.rgb_to_hsv(x)
    hsv = torch.cat([hsv[:, :1], hsv[:, 1:2] * factor, hsv[:, 2:]], 1)
    return ops.hsv_to_rgb(hsv).clamp_(0, 1)


def color_saturation_2(x: torch.Tensor, factor: float, gens: Gens) -> torch.Tensor:
    """``imsaturate``: multiply CIELAB a*, b* by ``factor``."""
    lab = rgb_to_lab(x)
    lab = torch.cat([lab[:, :1], lab[:, 1:] * factor], 1)
    return lab_to_rgb(lab).clamp_(0, 1)


# --------------------------------------------------------------------------------------------
# Compression
# --------------------------------------------------------------------------------------------


def jpeg2000(x: torch.Tensor, ratio: float, gens: Gens) -> torch.Tensor:
    """``imcompressjp2k``: OpenJPEG at compression ratio ``ratio`` (24 / ratio bits per pixel)."""
    return ops.jpeg2000(x, 24.0 / float(ratio))


def jpeg(x: torch.Tensor, quality: int, gens: Gens) -> torch.Tensor:
    """``imcompressjpeg``: libjpeg at ``quality``."""
    return ops.jpeg(x, int(quality))


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------


def _gaussian_noise(x: torch.Tensor, var: float, gens: Gens) -> torch.Tensor:
    """``imnoise(I, 'gaussian', 0, var)``: additive N(0, var) per channel, clipped."""
    noise = torch.stack([_randn(x, g, *x.shape[1:]) for g in gens])
    return (x + noise * math.sqrt(var)).clamp_(0, 1)


def white_noise(x: torch.Tensor, var: float, gens: Gens) -> torch.Tensor:
    """``imnoisegauss``: white Gaussian noise of variance ``var`` in RGB."""
    return _gaussian_noise(x, var, gens)


def white_noise_color(x: torch.Tensor, var: float, gens: Gens) -> torch.Tensor:
    """``imnoisecolorcomp``: white Gaussian noise of variance ``var`` on Y, Cb and Cr."""
    ycc = _gaussian_noise(rgb_to_ycbcr(x), var, gens)
    return ycbcr_to_rgb(ycc).clamp_(0, 1)


def impulse_noise(x: torch.Tensor, density: float, gens: Gens) -> torch.Tensor:
    """``imnoise(I, 'salt & pepper', d)``: each sample set to 0 or 1 with probability d/2 each."""
    u = torch.stack([_rand(x, g, *x.shape[1:]) for g in gens])
    y = torch.where(u < density / 2, torch.zeros_like(x), x)
    return torch.where((u >= density / 2) & (u < density), torch.ones_like(x), y)


def multiplicative_noise(x: torch.Tensor, var: float, gens: Gens) -> torch.Tensor:
    """``imnoise(I, 'speckle', var)``: I + I * n, n uniform with zero mean and variance var."""
    u = torch.stack([_rand(x, g, *x.shape[1:]) for g in gens])
    return (x + x * (u - 0.5) * math.sqrt(12 * var)).clamp_(0, 1)


def _joint_bilateral(x: torch.Tensor, guide: torch.Tensor, sigma_s: float, sigma_r: float,
                     radius: int) -> torch.Tensor:
    """Bilateral filter of ``x`` whose range weights come from the (smoother) ``guide``."""
    h, w = x.shape[-2:]
    xp = F.pad(x, (radius,) * 4, mode="replicate")
    gp = F.pad(guide, (radius,) * 4, mode="replicate")
    acc = torch.zeros_like(x)
    norm = torch.zeros_like(x[:, :1])
    inv = -1.0 / (2 * sigma_r**2 * x.shape[1])  # range distance: mean over channels
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            sl = (..., slice(radius + dy, radius + dy + h), slice(radius + dx, radius + dx + w))
            d = gp[sl] - guide
            wgt = d.mul_(d).sum(1, keepdim=True).mul_(inv).exp_()
            wgt.mul_(math.exp(-(dx * dx + dy * dy) / (2 * sigma_s**2)))
            acc.addcmul_(wgt, xp[sl])
            norm.add_(wgt)
    return acc / norm


def denoise(x: torch.Tensor, var: float, gens: Gens) -> torch.Tensor:
    """``imdenoise``: white noise of variance ``var``, then an edge-aware denoiser (not DnCNN).

    Two joint-bilateral passes, each guided by a Gaussian-smoothed copy of its input and with a
    range scale tied to the noise level, stand in for MATLAB's DnCNN: like it, they remove most
    of the noise at the cost of fine texture, more so as the noise grows.
    """
    noisy = _gaussian_noise(x, var, gens)
    sigma_n = math.sqrt(var)
    y = _joint_bilateral(noisy, _blur(noisy, 2.0), 3.0, 0.7 * sigma_n, 5)
    return _joint_bilateral(y, _blur(y, 1.0), 2.0, 0.5 * sigma_n, 3).clamp_(0, 1)


# --------------------------------------------------------------------------------------------
# Brightness
# --------------------------------------------------------------------------------------------


def brighten(x: torch.Tensor, amount: float, gens: Gens) -> torch.Tensor:
    """``imbrighten``: tone curve through (0.5, 0.5 + amount/2) on RGB and on L*, averaged 2:1."""
    mid = 0.5 + amount / 2
    lab = rgb_to_lab(x)
    ell = _curve1(lab[:, :1] / 100, mid) * 100
    via_lab = lab_to_rgb(torch.cat([ell, lab[:, 1:]], 1)).clamp(0, 1)
    return ((2 * _curve1(x, mid) + via_lab) / 3).clamp_(0, 1)


def darken(x: torch.Tensor, amount: float, gens: Gens) -> torch.Tensor:
    """``imdarken``: tone curve through (0.5, 0.5 - amount/2) on RGB."""
    return _curve1(x, 0.5 - amount / 2)


def mean_shift(x: torch.Tensor, amount: float, gens: Gens) -> torch.Tensor:
    """``immeanshift``: add ``amount`` to every channel, clipped."""
    return (x + amount).clamp_(0, 1)


# --------------------------------------------------------------------------------------------
# Spatial
# --------------------------------------------------------------------------------------------


def _warp(img: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor) -> torch.Tensor:
    """Resample 1xCxHxW at (y - sy, x - sx), bicubic, border values replicated."""
    _, _, h, w = img.shape
    gy, gx = torch.meshgrid(torch.arange(h, device=img.device, dtype=img.dtype),
                            torch.arange(w, device=img.device, dtype=img.dtype), indexing="ij")
    grid = torch.stack([2 * (gx - sx) / max(w - 1, 1) - 1, 2 * (gy - sy) / max(h - 1, 1) - 1], -1)
    return F.grid_sample(img, grid[None], mode="bicubic", padding_mode="border",
                         align_corners=True)


def jitter(x: torch.Tensor, amount: float, gens: Gens) -> torch.Tensor:
    """``imjitter``: five rounds of per-pixel random displacement N(0, amount^2) px, bicubic."""
    out = []
    h, w = x.shape[-2:]
    for k, g in enumerate(gens):
        y = x[k : k + 1]
        for _ in range(5):
            shifts = _randn(x, g, 2, h, w) * amount
            y = _warp(y, shifts[0], shifts[1])
        out.append(y)
    return torch.cat(out).clamp_(0, 1)


def non_eccentricity_patch(x: torch.Tensor, param: tuple[int, float, float],
                           gens: Gens) -> torch.Tensor:
    """``imnoneccentricity``: ``count`` patches copied to a random nearby spot (within radius/2)."""
    count, patch, radius = param
    h, w = x.shape[-2:]
    p = max(1, min(round(patch), h, w))
    out = x.clone()
    for k, g in enumerate(gens):
        u = torch.rand(int(count), 4, generator=g, dtype=torch.float32).tolist()
        for uy, ux, vy, vx in u:
            lo_y, hi_y = min(radius, h - p), max(min(radius, h - p), h - p - radius)
            lo_x, hi_x = min(radius, w - p), max(min(radius, w - p), w - p - radius)
            y0 = round(uy * (hi_y - lo_y) + lo_y)
            x0 = round(ux * (hi_x - lo_x) + lo_x)
            y1 = min(max(round((vy - 0.5) * radius + y0), 0), h - p)
            x1 = min(max(round((vx - 0.5) * radius + x0), 0), w - p)
            out[k, :, y1 : y1 + p, x1 : x1 + p] = out[k, :, y0 : y0 + p, x0 : x0 + p].clone()
    return out


def pixelate(x: torch.Tensor, strength: float, gens: Gens) -> torch.Tensor:
    """``impixelate``: nearest-neighbour resize by z = 0.95 - strength^0.6 and back."""
    h, w = x.shape[-2:]
    z = 0.95 - strength**0.6
    small = F.interpolate(x, size=(max(1, math.ceil(z * h)), max(1, math.ceil(z * w))),
                          mode="nearest-exact")
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


def _multilevel_thresholds(img: torch.Tensor, n: int) -> np.ndarray:
    """``n`` intensity thresholds minimising within-class variance (Lloyd-Max on 256 bins)."""
    values = img.detach().float().clamp(0, 1).mul(255).round().to(torch.int64).flatten().cpu()
    hist = np.bincount(values.numpy(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    cdf = np.cumsum(hist) / hist.sum()
    centres = np.interp((np.arange(n + 1) + 0.5) / (n + 1), cdf, levels)
    for _ in range(300):
        cuts = (centres[:-1] + centres[1:]) / 2
        cls = np.searchsorted(cuts, levels)
        mass = np.bincount(cls, weights=hist, minlength=n + 1)
        total = np.bincount(cls, weights=hist * levels, minlength=n + 1)
        new = np.where(mass > 0, total / np.maximum(mass, 1e-12), centres)
        new = np.maximum.accumulate(new)
        if np.allclose(new, centres, atol=1e-6):
            break
        centres = new
    return (centres[:-1] + centres[1:]) / 2 / 255.0


def quantization(x: torch.Tensor, n: int, gens: Gens) -> torch.Tensor:
    """``imnoisequantize``: ``n`` multi-level Otsu thresholds over all channels, ``imquantize``."""
    out = []
    for img in x:
        t = torch.as_tensor(_multilevel_thresholds(img, int(n)), dtype=x.dtype, device=x.device)
        values = torch.cat([t.new_zeros(1), t[1:], t.new_ones(1)])
        out.append(values[torch.bucketize(img.contiguous(), t)])
    return torch.stack(out)


def color_block(x: torch.Tensor, param: tuple[int, float], gens: Gens) -> torch.Tensor:
    """``imcolorblock``: ``count`` square patches of uniform random colour at random spots."""
    count, patch = param
    h, w = x.shape[-2:]
    p = max(1, min(round(patch), h, w))
    out = x.clone()
    for k, g in enumerate(gens):
        draws = torch.rand(int(count), 5, generator=g, dtype=torch.float32)
        for row in draws:
            y0 = math.floor(float(row[3]) * (h - p))
            x0 = math.floor(float(row[4]) * (w - p))
            out[k, :, y0 : y0 + p, x0 : x0 + p] = row[:3].to(x).view(3, 1, 1)
    return out


# --------------------------------------------------------------------------------------------
# Sharpness and contrast
# --------------------------------------------------------------------------------------------


def high_sharpen(x: torch.Tensor, param: tuple[float, float], gens: Gens) -> torch.Tensor:
    """``imsharpenHi`` (imsharpen): unsharp mask of L* with Gaussian ``radius``, gain ``amount``."""
    amount, radius = param
    lab = rgb_to_lab(x)
    ell = lab[:, :1]
    sharp = ell + amount * (ell - _blur(ell, radius))
    return lab_to_rgb(torch.cat([sharp, lab[:, 1:]], 1)).clamp_(0, 1)


def contrast_change(x: torch.Tensor, amount: float, gens: Gens) -> torch.Tensor:
    """``imcontrastc``: spline through (0.3, 0.25 - a/4), (0.5, 0.5), (0.7, 0.75 + a/4)."""
    return _spline_curve(x, (0, 0.3, 0.5, 0.7, 1), (0, 0.25 - amount / 4, 0.5,
                                                    0.75 + amount / 4, 1))


# --------------------------------------------------------------------------------------------
# Registration, in KADID-10k's type order
# --------------------------------------------------------------------------------------------


def _register(kind: str, family: str, op, table: Sequence, *, random: bool = False,
              scale: Callable | None = None, notes: str = "") -> None:
    """Register ``kadid:<kind>`` with its five-level table."""
    register(Corruption(name=f"kadid:{kind}", family=family, op=op, tables={TABLE: tuple(table)},
                        random=random, source="kadid", reference_size={TABLE: REFERENCE_SIDE},
                        scale=scale, notes=notes))


_register("gaussian_blur", "blur", gaussian_blur, (0.1, 0.5, 1, 2, 5), scale=_scale_linear,
          notes="sigma in px; discrete Gaussian, radius ceil(2 sigma)")
_register("lens_blur", "blur", lens_blur, (1, 2, 4, 6, 8), scale=_scale_linear,
          notes="disk radius in px")
_register("motion_blur", "blur", motion_blur, (1, 2, 4, 6, 10), random=True,
          scale=_scale_motion, notes="line length in px (1 = none), random angle")
_register("color_diffusion", "color", color_diffusion,
          ((3.5, 1), (6.5, 3), (11.0, 6), (14.0, 8), (20.0, 12)), scale=_scale_at(0),
          notes="(a*b* blur sigma = 1.5 amount + 2, a*b* gain = amount), amount 1,3,6,8,12")
_register("color_shift", "color", color_shift,
          ((1, 4), (3, 4), (6, 4), (8, 4), (12, 4)), random=True, scale=_scale_at(0, 1),
          notes="(green shift in px, edge-mask sigma in px), random direction")
_register("color_quantization", "color", color_quantization, (64, 48, 32, 16, 8),
          notes="palette size, Floyd-Steinberg dithering")
_register("color_saturation_1", "color", color_saturation_1, (0.4, 0.2, 0.1, 0, -0.4),
          notes="HSV saturation factor")
_register("color_saturation_2", "color", color_saturation_2, (1, 2, 3, 6, 9),
          notes="CIELAB a*b* factor (level 1 = 1 leaves the image unchanged)")
_register("jpeg2000", "compression", jpeg2000, (16, 32, 45, 120, 400),
          notes="compression ratio (OpenJPEG)")
_register("jpeg", "compression", jpeg, (43, 36, 24, 7, 4), notes="libjpeg quality")
_register("white_noise", "noise", white_noise, (0.001, 0.002, 0.003, 0.005, 0.01), random=True,
          notes="variance in RGB")
_register("white_noise_color", "noise", white_noise_color,
          (0.0001, 0.0005, 0.001, 0.002, 0.003), random=True, notes="variance in YCbCr")
_register("impulse_noise", "noise", impulse_noise, (0.001, 0.005, 0.01, 0.02, 0.03),
          random=True, notes="salt-and-pepper density per sample")
_register("multiplicative_noise", "noise", multiplicative_noise,
          (0.001, 0.005, 0.01, 0.02, 0.05), random=True, notes="speckle variance")
_register("denoise", "noise", denoise, (0.01, 0.03, 0.05, 0.1, 0.15), random=True,
          notes="noise variance before denoising; joint-bilateral denoiser stands in for DnCNN")
_register("brighten", "color", brighten, (0.1, 0.2, 0.4, 0.7, 1.1), notes="curve amount")
_register("darken", "color", darken, (0.05, 0.1, 0.2, 0.4, 0.8), notes="curve amount")
_register("mean_shift", "color", mean_shift, (0.15, 0.08, 0, -0.08, -0.15),
          notes="added intensity; not monotone by design (level 3 = identity)")
_register("jitter", "digital", jitter, (0.05, 0.1, 0.2, 0.5, 1), random=True,
          scale=_scale_linear, notes="displacement std in px, 5 rounds")
_register("non_eccentricity_patch", "digital", non_eccentricity_patch,
          ((20, 16, 16), (40, 16, 16), (60, 16, 16), (80, 16, 16), (100, 16, 16)), random=True,
          scale=_scale_at(1, 2), notes="(patches, patch side px, displacement radius px)")
_register("pixelate", "digital", pixelate, (0.01, 0.05, 0.1, 0.2, 0.5),
          notes="strength; resize factor 0.95 - strength^0.6 (relative, so not rescaled)")
_register("quantization", "digital", quantization, (20, 16, 13, 10, 7),
          notes="number of thresholds over all channels")
_register("color_block", "digital", color_block,
          ((2, 32), (4, 32), (6, 32), (8, 32), (10, 32)), random=True, scale=_scale_at(1),
          notes="(blocks, block side px)")
_register("high_sharpen", "digital", high_sharpen,
          ((1, 3), (2, 3), (3, 3), (6, 3), (12, 3)), scale=_scale_at(1),
          notes="(unsharp amount, Gaussian radius px) on L*")
_register("contrast_change", "color", contrast_change, (0.3, 0.15, 0, -0.4, -0.6),
          notes="curve amount; levels 1-3 raise contrast, 4-5 lower it (not monotone)")
