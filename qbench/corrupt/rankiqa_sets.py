"""RankIQA ranked-data generator sets (Liu, van de Weijer & Bagdanov, ICCV 2017).

Two sets, with the parameters of the authors' MATLAB generators (github.com/xialeiliu/RankIQA,
``data/data_generator/distortion_generator.m`` and ``data/rank_tid2013/tid2013_generator.m``
with its per-distortion functions); see ``docs/corruptions-rankiqa.md``.

* ``rankiqa-live:<type>``: the four LIVE distortions at five levels.
* ``rankiqa-tid:<type>``: 17 of the 24 TID2013 distortions at four levels.

Spatial parameters were made for ~500 px pristine images; they are scaled by
``min(H, W) / 512``. Intensity parameters (noise variances, codec settings, gains) are not.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from qbench.corrupt import ops
from qbench.corrupt.registry import Corruption, register
from qbench.corrupt.seeding import per_image
from qbench.data.loaders.tid2013 import TYPES as TID_TYPES

LIVE, TID = "rankiqa-live", "rankiqa-tid"
REFERENCE_SIDE = 512

# MATLAB rgb2ycbcr (ITU-R BT.601, studio range) on [0, 1] values: ycc = OFFSET + M @ rgb.
_YCC_M = torch.tensor([[65.481, 128.553, 24.966],
                       [-37.797, -74.203, 112.0],
                       [112.0, -93.786, -18.214]], dtype=torch.float64) / 255.0
_YCC_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
# Orthonormal opponent colour transform used by the CBM3D stand-in.
_OPP = torch.tensor([[1 / math.sqrt(3)] * 3,
                     [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
                     [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)]], dtype=torch.float64)


# ---------------------------------------------------------------------------- building blocks

def _mix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix to every pixel of an Nx3xHxW batch."""
    return torch.einsum("ij,njhw->nihw", m.to(x), x)


def _rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's rgb2ycbcr on [0, 1] values (studio-range BT.601)."""
    return _mix(x, _YCC_M) + _YCC_OFFSET.to(x).view(1, 3, 1, 1)


def _ycbcr_to_rgb(y: torch.Tensor) -> torch.Tensor:
    """MATLAB's ycbcr2rgb on [0, 1] values (inverse of :func:`_rgb_to_ycbcr`)."""
    return _mix(y - _YCC_OFFSET.to(y).view(1, 3, 1, 1), torch.linalg.inv(_YCC_M))


def _symmetric_index(n: int, pad: int, device) -> torch.Tensor:
    """Indices of a length-``n`` axis padded by ``pad`` with MATLAB's 'symmetric' rule."""
    idx = torch.arange(-pad, n + pad, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def _symmetric_pad(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Mirror-pad (edge sample repeated, any pad size) the last two axes."""
    x = x.index_select(-1, _symmetric_index(x.shape[-1], pw, x.device))
    return x.index_select(-2, _symmetric_index(x.shape[-2], ph, x.device))


def _fspecial_blur(x: torch.Tensor, hsize: float) -> torch.Tensor:
    """``imfilter(x, fspecial('gaussian', hsize, hsize/6), 'symmetric')`` for any real hsize."""
    sigma = float(hsize) / 6.0
    if sigma <= 0:
        return x.clone()
    radius = max(1, int(float(hsize) // 2))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = _symmetric_pad(x, radius, radius)
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _randn(x: torch.Tensor, gens: Sequence[torch.Generator], shape=None) -> torch.Tensor:
    """Standard normal noise of one image's ``shape`` (default 3xHxW) per generator."""
    shape = tuple(x.shape[1:]) if shape is None else shape
    return per_image(gens, lambda g: torch.randn(shape, generator=g, dtype=torch.float32)).to(x)


def _rand(x: torch.Tensor, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """Uniform [0, 1) noise shaped like ``x``, one generator per image."""
    return per_image(gens, lambda g: torch.rand(x.shape[1:], generator=g, dtype=torch.float32)).to(x)


def _randint(high: int, g: torch.Generator) -> int:
    """One integer in [0, high] from ``g``."""
    return int(torch.randint(0, high + 1, (1,), generator=g))


def _imnoise_gaussian(x: torch.Tensor, var: float, gens: Sequence[torch.Generator]):
    """MATLAB ``imnoise(x, 'gaussian', 0, var)``: independent noise on every sample, clipped."""
    return (x + math.sqrt(var) * _randn(x, gens)).clamp(0, 1)


def _round_len(value: float, ratio: float, minimum: int) -> int:
    """A pixel length scaled by ``ratio`` and rounded (never below ``minimum``)."""
    return max(minimum, round(float(value) * ratio))


# ---------------------------------------------------------------------------- LIVE set

def _gblur(x, hsize, gens):
    """Gaussian blur, kernel ``hsize`` px, sigma = hsize / 6, symmetric borders."""
    return _fspecial_blur(x, hsize).clamp(0, 1)


def _white_noise(x, var, gens):
    """Additive white Gaussian noise of variance ``var`` on [0, 1] images."""
    return _imnoise_gaussian(x, var, gens)


def _jpeg(x, quality, gens):
    """libjpeg round trip; quality 0 is libjpeg's (and MATLAB's) floor, quality 1."""
    return ops.jpeg(x, max(1, int(quality)))


@lru_cache(maxsize=1)
def _jp2_header_bytes() -> int:
    """Bytes OpenJPEG (via Pillow) writes before the first tile: JP2 boxes + main header."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="JPEG2000", quality_mode="rates",
                                    quality_layers=[1000.0], irreversible=True)
    return buf.getvalue().find(b"\xff\x90")  # the first SOT marker


def _jp2k_ratio(bpp: float, h: int, w: int) -> float:
    """Compression ratio giving 24/bpp at 512x512 and the same coded bits per pixel elsewhere."""
    header = _jp2_header_bytes()
    payload = float(bpp) * h * w / 8 - header * h * w / REFERENCE_SIDE**2
    return 3.0 * h * w / (header + max(payload, 1.0))


def _jp2k(x, bpp, gens):
    """OpenJPEG round trip at ``bpp`` bits per pixel (header overhead as at 512x512)."""
    ratio = _jp2k_ratio(bpp, x.shape[-2], x.shape[-1])
    return ops.pil_roundtrip(x, "JPEG2000", quality_mode="rates", quality_layers=[ratio],
                             irreversible=True)


def _scale_hsize(hsize, ratio):
    """Blur kernel size scaled with the image side."""
    return float(hsize) * ratio


# ---------------------------------------------------------------------------- TID set

def _color_noise(x, var, gens):
    """#02 (gnc.m): Gaussian noise of variance ``var`` on Y, Cb and Cr, back to RGB."""
    ycc = _rgb_to_ycbcr(x) + math.sqrt(var) * _randn(x, gens)
    return _ycbcr_to_rgb(ycc).clamp(0, 1)


def _nyquist_notch(h: int, w: int, d0: float, device) -> torch.Tensor:
    """ghp.m's mask 1 - exp(-d^2 / 2 d0^2) about bin (h/2, w/2) of an *unshifted* spectrum."""
    u = torch.arange(1, h + 1, device=device, dtype=torch.float64) - h / 2
    v = torch.arange(1, w + 1, device=device, dtype=torch.float64) - w / 2
    d2 = u.view(-1, 1) ** 2 + v.view(1, -1) ** 2
    return 1 - torch.exp(-d2 / (2 * float(d0) ** 2))


def _high_freq_noise(x, param, gens):
    """#05 (HighFN.m): ghp.m filter on the unshifted FFT, 8-bit rounding, then white noise."""
    var, d0 = param
    mask = _nyquist_notch(x.shape[-2], x.shape[-1], d0, x.device)
    spec = torch.fft.fft2(x.to(torch.float64) * 255) * mask
    filtered = (torch.fft.ifft2(spec).real.round().clamp(0, 255) / 255).to(x)
    return _imnoise_gaussian(filtered, var, gens)


def _scale_d0(param, ratio):
    """The filter radius is in frequency bins: scale it with the image side."""
    var, d0 = param
    return (var, float(d0) * ratio)


def _impulse_noise(x, density, gens):
    """#06: MATLAB salt & pepper on every sample: u < d/2 -> 0, d/2 <= u < d -> 1."""
    u = _rand(x, gens)
    y = torch.where(u < density / 2, torch.zeros_like(x), x)
    return torch.where((u >= density / 2) & (u < density), torch.ones_like(x), y)


def _otsu_thresholds(hist: torch.Tensor, n: int, iters: int = 200) -> list[int]:
    """``n`` multi-level Otsu thresholds of a 256-bin histogram (Lloyd iterations)."""
    levels = torch.arange(256, dtype=torch.float64)
    cdf = hist.cumsum(0) / hist.sum()
    q = torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)
    t = torch.searchsorted(cdf, q).clamp(0, 254).tolist()
    for _ in range(iters):
        edges = [-1, *t, 255]
        means = []
        for lo, hi in pairwise(edges):
            w = hist[lo + 1 : hi + 1]
            s = float(w.sum())
            means.append(float((w * levels[lo + 1 : hi + 1]).sum()) / s if s else (lo + hi) / 2)
        new = [int((a + b) // 2) for a, b in pairwise(means)]
        if new == t:
            break
        t = new
    return t


def _quantize_image(img: torch.Tensor, n: int) -> torch.Tensor:
    """QuantizationNoise.m on one 3xHxW image: [0, t2..tn, 255] over Otsu's ``n`` thresholds."""
    v = img.detach().cpu().clamp(0, 1).mul(255).round().to(torch.int64)
    t = _otsu_thresholds(torch.bincount(v.flatten(), minlength=256).double(), n)
    values = torch.tensor([0, *t[1:], 255], dtype=torch.float32)
    cls = torch.bucketize(v, torch.tensor(t), right=False)  # v <= t[0] -> 0, ...
    return (values[cls] / 255).to(img)


def _quantization_noise(x, n_thresholds, gens):
    """#07: Otsu multi-thresholding of the whole image's values."""
    return torch.stack([_quantize_image(img, int(n_thresholds)) for img in x])


def _dct_matrix(n: int, device, dtype) -> torch.Tensor:
    """Orthonormal DCT-II matrix (rows are basis functions)."""
    k = torch.arange(n, dtype=torch.float64).view(-1, 1)
    i = torch.arange(n, dtype=torch.float64).view(1, -1)
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m.to(device, dtype)


def _dct_denoise_channel(y: torch.Tensor, sigma: float, block: int = 8, step: int = 2):
    """Sliding-window 2-D DCT hard thresholding at 2.7 sigma of an Nx1xHxW plane."""
    h, w = y.shape[-2:]
    z = _symmetric_pad(y, block, block)
    z = F.pad(z, (0, -(w + block) % step, 0, -(h + block) % step), mode="replicate")
    d = _dct_matrix(block, y.device, y.dtype)
    basis = torch.kron(d, d)  # vec(D P D^T) = (D kron D) vec(P)
    patches = F.unfold(z, block, stride=step)  # N x 64 x L
    coef = torch.einsum("ij,njl->nil", basis, patches)
    keep = coef.abs() > 2.7 * sigma
    keep[:, 0] = True
    coef = coef * keep
    weight = 1.0 / keep.sum(1, keepdim=True).to(y.dtype)  # BM3D's aggregation weights
    est = torch.einsum("ji,njl->nil", basis, coef) * weight
    size = z.shape[-2:]
    num = F.fold(est, size, block, stride=step)
    den = F.fold(weight.expand_as(est), size, block, stride=step)
    return (num / den.clamp_min(1e-12))[..., block : block + h, block : block + w]


def _dct_denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Colour denoising in an orthonormal opponent space (a CBM3D stand-in)."""
    opp = _mix(x, _OPP)
    den = torch.cat([_dct_denoise_channel(opp[:, c : c + 1], sigma) for c in range(3)], 1)
    return _mix(den, _OPP.T)


def _image_denoising(x, var, gens):
    """#09 (ImageDenoising.m): noise ``var`` + noise sigma 25/255, denoised assuming sigma 25."""
    sigma = 25.0 / 255.0
    noisy = _imnoise_gaussian(x, var, gens)
    noisy = noisy + sigma * _randn(x, gens)
    return _dct_denoise(noisy, sigma).clamp(0, 1)


def _nepn_image(img: torch.Tensor, count: int, patch: int, shift: int, g: torch.Generator):
    """nepn.m on one image: ``count`` patches replaced by the patch ``shift`` px down-right."""
    h, w = img.shape[-2:]
    margin = max(2 * patch, patch + shift)
    out = img.clone()
    if h <= margin or w <= margin:
        return out
    for _ in range(count):
        r, c = _randint(h - margin, g), _randint(w - margin, g)
        out[:, r : r + patch, c : c + patch] = img[:, r + shift : r + shift + patch,
                                                   c + shift : c + shift + patch]
    return out


def _nepn(x, param, gens):
    """#14 (nepn.m): non-eccentricity pattern noise, ``count`` 15x15 patches shifted by 5 px."""
    count, patch, shift = param
    return torch.stack([_nepn_image(img, count, patch, shift, g)
                        for img, g in zip(x, gens, strict=True)])


def _scale_nepn(param, ratio):
    """Patch size and shift scale with the image; the count does not (same area fraction)."""
    count, patch, shift = param
    return (count, _round_len(patch, ratio, 2), _round_len(shift, ratio, 1))


def _block_image(img: torch.Tensor, param, g: torch.Generator) -> torch.Tensor:
    """BlockWise.m on one image: ``count`` blocks of the mean colour, red set by gain/offset."""
    count, block, red_gain, red_offset = param
    h, w = img.shape[-2:]
    block = min(block, h - 1, w - 1)
    colour = img.mean(dim=(1, 2)).clone()
    colour[0] = colour[0] * red_gain + red_offset / 255
    colour = colour.clamp(0, 1).view(3, 1, 1)
    out = img.clone()
    for _ in range(count):
        r, c = _randint(h - block, g), _randint(w - block, g)
        out[:, r : r + block, c : c + block] = colour
    return out


def _block_wise(x, param, gens):
    """#15 (BlockWise.m): 2/4/8/16 uniform 32x32 blocks of decreasing colour contrast."""
    return torch.stack([_block_image(img, param, g) for img, g in zip(x, gens, strict=True)])


def _scale_block(param, ratio):
    """The block side scales with the image; count and colour do not."""
    count, block, red_gain, red_offset = param
    return (count, _round_len(block, ratio, 1), red_gain, red_offset)


def _mean_shift(x, delta, gens):
    """#16 (MeanShift.m): add ``delta`` grey levels (of 255), saturating."""
    return (x + delta / 255.0).clamp(0, 1)


def _contrast_change(x, gain, gens):
    """#17 (ContrastChange.m): multiply every value by ``gain`` (< 1: darker, less contrast)."""
    return (x * gain).clamp(0, 1)


def _color_saturation(x, factor, gens):
    """#18 (ColorSaturation.m): Cb and Cr scaled about 0.5 by ``factor`` (negative inverts)."""
    ycc = _rgb_to_ycbcr(x)
    chroma = 0.5 + (ycc[:, 1:] - 0.5) * factor
    return _ycbcr_to_rgb(torch.cat([ycc[:, :1], chroma], 1)).clamp(0, 1)


def _multiplicative_noise(x, std, gens):
    """#19 (MultiGN.m): every sample times (1 + std * N(0, 1))."""
    return (x * (1 + std * _randn(x, gens))).clamp(0, 1)


def _dither_image(img: torch.Tensor, colours: int) -> torch.Tensor:
    """rgb2ind(img, n) + ind2rgb: an ``n``-colour palette, Floyd-Steinberg dithered."""
    pil = Image.fromarray(ops.to_uint8_array(img))
    palette = pil.quantize(colors=int(colours), method=Image.Quantize.MEDIANCUT)
    dithered = pil.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    return ops.from_uint8_array(np.asarray(dithered.convert("RGB")), img)


def _color_quantization(x, colours, gens):
    """#22: colour quantisation to ``colours`` colours with dithering."""
    return torch.stack([_dither_image(img, colours) for img in x])


def _shift_right(ch: torch.Tensor, shift: float) -> torch.Tensor:
    """CA.m's shift of an NxHxW plane ``shift`` px right (linear for fractions); left edge kept."""
    if shift <= 0:
        return ch.clone()
    w = ch.shape[-1]
    pos = torch.arange(w, device=ch.device, dtype=ch.dtype) - shift
    i0 = pos.floor().clamp(0, w - 1).long()
    i1 = (i0 + 1).clamp(max=w - 1)
    f = (pos - pos.floor()).clamp(0, 1)
    moved = ch.index_select(-1, i0) * (1 - f) + ch.index_select(-1, i1) * f
    return torch.where(pos >= 0, moved, ch)


def _chromatic_aberration(x, param, gens):
    """#23 (CA.m): red shifted L-1 px, green L/2-1 px right, then a 3x3 Gaussian blur."""
    red, green, hsize = param
    out = torch.stack([_shift_right(x[:, 0], red), _shift_right(x[:, 1], green), x[:, 2]], 1)
    return _fspecial_blur(out, hsize).clamp(0, 1)


def _scale_ca(param, ratio):
    """Channel shifts and the blur kernel size scale with the image side."""
    return tuple(float(p) * ratio for p in param)


# ---------------------------------------------------------------------------- registration

def _register(set_name: str, name: str, family: str, op, params: tuple, random: bool,
              scale=None, notes: str = "") -> Corruption:
    """Register one RankIQA corruption under ``<set_name>:<name>``."""
    return register(Corruption(name=f"{set_name}:{name}", family=family, op=op,
                               tables={set_name: tuple(params)}, random=random, source=set_name,
                               reference_size={set_name: REFERENCE_SIDE}, scale=scale,
                               notes=notes))


LIVE_GBLUR = (7, 15, 39, 91, 199)
LIVE_WN = tuple(2.0 ** e for e in (-10, -7.5, -5.5, -3.5, 0))
LIVE_JPEG = (43, 12, 7, 4, 0)
LIVE_JP2K = (0.46, 0.16, 0.07, 0.04, 0.02)

_register(LIVE, "gblur", "blur", _gblur, LIVE_GBLUR, False, _scale_hsize,
          "kernel size hsize px (scaled by min(H,W)/512), sigma = hsize/6, symmetric borders")
_register(LIVE, "wn", "noise", _white_noise, LIVE_WN, True, None,
          "additive Gaussian noise, variance 2^[-10,-7.5,-5.5,-3.5,0] on [0,1] images")
_register(LIVE, "jpeg", "compression", _jpeg, LIVE_JPEG, False, None,
          "JPEG quality; 0 is encoded as 1 (libjpeg's minimum, what quality 0 means there)")
_register(LIVE, "jp2k", "compression", _jp2k, LIVE_JP2K, False, None,
          "JPEG 2000 (OpenJPEG) at bits per pixel, compression ratio 24/bpp")

_TID = {  # TID2013 type number -> (family, op, 4 params, random, scale, notes)
    1: ("noise", _white_noise, (0.001, 0.005, 0.01, 0.05), True, None,
        "imnoise gaussian, variance on [0,1]"),
    2: ("noise", _color_noise, (0.0140, 0.0198, 0.0343, 0.0524), True, None,
        "Gaussian noise of this variance added to Y, Cb, Cr (BT.601 studio range)"),
    5: ("noise", _high_freq_noise, ((0.001, 10), (0.005, 10), (0.01, 10), (0.05, 10)), True,
        _scale_d0, "(noise variance, ghp radius d0 in bins, scaled); ghp acts on the unshifted "
        "spectrum, i.e. a notch at the Nyquist corner, so this is nearly white noise"),
    6: ("noise", _impulse_noise, (0.005, 0.01, 0.05, 0.1), True, None,
        "salt & pepper density, per sample"),
    7: ("digital", _quantization_noise, tuple(int(np.round(255 / n)) for n in (27, 39, 55, 76)),
        False, None, "number of multi-level Otsu thresholds: int32(255./[27 39 55 76])"),
    8: ("blur", _gblur, (7, 15, 39, 91), False, _scale_hsize,
        "kernel size hsize px (scaled), sigma = hsize/6"),
    9: ("blur", _image_denoising, (0.001, 0.005, 0.01, 0.05), True, None,
        "noise variance; + sigma 25/255 noise; sliding 8x8 DCT hard thresholding stands in "
        "for CBM3D(sigma=25)"),
    10: ("compression", _jpeg, (43, 12, 7, 4), False, None, "JPEG quality"),
    11: ("compression", _jp2k, (0.46, 0.16, 0.07, 0.04), False, None,
         "JPEG 2000 bits per pixel"),
    14: ("digital", _nepn, ((30, 15, 5), (70, 15, 5), (150, 15, 5), (300, 15, 5)), True,
         _scale_nepn, "(patch count, patch side, shift); side and shift scaled"),
    15: ("digital", _block_wise, ((2, 32, 0.0, 0), (4, 32, 1.0, 50), (8, 32, 1.0, 30),
                                  (16, 32, 1.0, 0)), True, _scale_block,
         "(block count, side, red gain, red offset /255): red 0, mean+50, mean+30, mean"),
    16: ("color", _mean_shift, (15, 30, 45, 60), False, None, "grey levels added (of 255)"),
    17: ("color", _contrast_change, (0.85, 0.7, 0.55, 0.4), False, None, "gain on all values"),
    18: ("color", _color_saturation, (0.4, 0.0, -0.4, -0.8), False, None,
         "chroma factor about 0.5 in YCbCr"),
    19: ("noise", _multiplicative_noise, (0.05, 0.09, 0.13, 0.2), True, None,
         "std of the multiplicative noise, per sample"),
    22: ("color", _color_quantization, (64, 32, 16, 8), False, None,
         "palette size, median cut + Floyd-Steinberg dithering (Pillow)"),
    23: ("color", _chromatic_aberration, ((1, 0, 3), (5, 2, 3), (9, 4, 3), (13, 6, 3)), False,
         _scale_ca, "(red shift, green shift, blur hsize) px, all scaled; from CA.m level "
                    "L in [2,6,10,14]: red L-1, green L/2-1"),
}

TID_NUMBERS = tuple(_TID)
for _number, (_family, _op, _params, _random, _scale, _notes) in _TID.items():
    _register(TID, TID_TYPES[_number - 1], _family, _op, _params, _random, _scale,
              f"TID2013 #{_number:02d}: {_notes}")

LIVE_NAMES = tuple(f"{LIVE}:{n}" for n in ("gblur", "wn", "jpeg", "jp2k"))
TID_NAMES = tuple(f"{TID}:{TID_TYPES[n - 1]}" for n in TID_NUMBERS)
# BlockWise.m pairs more blocks with milder block colours (see docs/corruptions-rankiqa.md).
NOT_MONOTONE = (f"{TID}:local_block_wise_distortions",)
