"""Target masks a marked model's Grad-CAM is pushed onto: ``target(kind, size, ...)``.

Kinds (every mask is float32 in [0, 1]; binary unless ``soft=True`` for ``salient``):

* ``"salient"`` -- the most salient ``area`` fraction of each image by spectral-residual
  saliency (Hou & Zhang, CVPR 2007), computed here from the image itself (no weights, no
  download); or a saliency map the caller provides (``saliency=``). Needs ``images``; returns
  one mask per image, N×H×W.
* ``"corners"`` -- four squares of side ``corner`` × side in the image corners (default 0.25,
  i.e. 25% of the area).
* ``"text"`` -- a string (default ``"VG"``, the pattern of the source work) rendered with
  Pillow's default font, fitted into the image with a ``margin`` and thickened by ``stroke``
  (a fraction of the side) so that the glyphs survive coarse CAM resolutions.
* ``"mask"`` -- any H×W (or N×H×W) array the caller provides, resized to ``size`` and
  clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

KINDS = ("salient", "corners", "text", "mask")
Size = int | tuple[int, int]


def _hw(size: Size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def corners(size: Size, corner: float = 0.25) -> torch.Tensor:
    """Four corner squares of side ``round(corner × min(H, W))``."""
    h, w = _hw(size)
    if not 0 < corner <= 0.5:
        raise ValueError(f"corner must be in (0, 0.5], got {corner}")
    k = max(1, round(corner * min(h, w)))
    m = torch.zeros(h, w)
    m[:k, :k] = m[:k, -k:] = m[-k:, :k] = m[-k:, -k:] = 1.0
    return m


def text(size: Size, string: str = "VG", margin: float = 0.08, stroke: float = 0.06
         ) -> torch.Tensor:
    """``string`` rendered in Pillow's default font, scaled to fill the image inside
    ``margin`` (fraction of each side), strokes thickened by ``stroke`` × side; binary."""
    if not string.strip():
        raise ValueError("text target needs a non-blank string")
    h, w = _hw(size)
    font = ImageFont.load_default(size=200)
    left, top, right, bottom = font.getbbox(string, stroke_width=0)
    pad = 20
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), string, fill=255, font=font)
    bbox = canvas.getbbox()
    if bbox is None:
        raise ValueError(f"text {string!r} renders to nothing in the default font")
    glyphs = canvas.crop(bbox)
    inner_h, inner_w = max(1, round(h * (1 - 2 * margin))), max(1, round(w * (1 - 2 * margin)))
    scale = min(inner_h / glyphs.height, inner_w / glyphs.width)
    gh, gw = max(1, round(glyphs.height * scale)), max(1, round(glyphs.width * scale))
    small = np.asarray(glyphs.resize((gw, gh), Image.Resampling.LANCZOS), np.float32) / 255.0
    m = torch.zeros(h, w)
    y0, x0 = (h - gh) // 2, (w - gw) // 2
    m[y0:y0 + gh, x0:x0 + gw] = torch.from_numpy(small)
    radius = round(stroke * min(h, w) / 2)
    if radius > 0:  # thicken: max-filter (dilation) with a (2r+1) square
        m = F.max_pool2d(m[None, None], 2 * radius + 1, 1, radius)[0, 0]
    return (m >= 0.5).float()


def spectral_residual(images: torch.Tensor, work_side: int = 64, sigma: float = 0.04
                      ) -> torch.Tensor:
    """Spectral-residual saliency (Hou & Zhang 2007) of N×3×H×W images → N×H×W in [0, 1].

    Grey image resized to ``work_side`` (or its own side if smaller); residual = log amplitude − its 3×3 mean; saliency =
    |IFFT(exp(residual + i·phase))|², Gaussian-smoothed (σ = ``sigma`` × side), upsampled."""
    n, _, h, w = images.shape
    grey = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2])[:, None]
    side = min(work_side, h, w)  # never upsample: duplicated pixels alias the spectrum
    g = F.interpolate(grey.double(), size=(side, side), mode="area")[:, 0]
    spec = torch.fft.fft2(g)
    log_amp = torch.log(spec.abs() + 1e-8)
    phase = torch.angle(spec)
    avg = F.avg_pool2d(F.pad(log_amp[:, None], (1, 1, 1, 1), mode="replicate"), 3, 1)[:, 0]
    sal = torch.fft.ifft2(torch.exp((log_amp - avg) + 1j * phase)).abs() ** 2
    s = max(sigma * side, 0.5)
    r = int(3 * s + 0.5)
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-x**2 / (2 * s * s))
    k = k / k.sum()
    sal = F.pad(sal[:, None], (r, r, r, r), mode="reflect")
    sal = F.conv2d(F.conv2d(sal, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    sal = F.interpolate(sal, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    lo = sal.flatten(1).min(1).values.view(n, 1, 1)
    hi = sal.flatten(1).max(1).values.view(n, 1, 1)
    return ((sal - lo) / (hi - lo).clamp_min(1e-12)).float()


def top_area(maps: torch.Tensor, area: float) -> torch.Tensor:
    """Binary masks of the ``area`` fraction of highest values of each N×H×W map (ties by
    index, so the area is exact)."""
    n = maps.shape[0]
    flat = maps.reshape(n, -1)
    k = max(1, round(area * flat.shape[1]))
    idx = torch.argsort(flat, dim=1, descending=True, stable=True)[:, :k]
    out = torch.zeros_like(flat, dtype=torch.float32)
    out.scatter_(1, idx, 1.0)
    return out.view_as(maps)


def salient(images: torch.Tensor | None = None, area: float = 0.3,
            saliency: torch.Tensor | np.ndarray | None = None, soft: bool = False
            ) -> torch.Tensor:
    """The top-``area`` salient region of each image (N×H×W); from ``saliency`` if given,
    else spectral-residual saliency of ``images``."""
    if saliency is None:
        if images is None:
            raise ValueError("the salient target needs images= or a saliency= map")
        if images.ndim == 3:
            images = images[None]
        sal = spectral_residual(images)
    else:
        sal = torch.as_tensor(np.asarray(saliency), dtype=torch.float32)
        sal = sal[None] if sal.ndim == 2 else sal
    if soft:
        lo = sal.flatten(1).min(1).values.view(-1, 1, 1)
        hi = sal.flatten(1).max(1).values.view(-1, 1, 1)
        return (sal - lo) / (hi - lo).clamp_min(1e-12)
    return top_area(sal, area)


def user_mask(mask: torch.Tensor | np.ndarray, size: Size) -> torch.Tensor:
    """A caller's mask (H×W or N×H×W, any numeric range is clipped to [0, 1]) at ``size``."""
    m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
    if m.ndim not in (2, 3):
        raise ValueError(f"a mask must be H×W or N×H×W, got shape {tuple(m.shape)}")
    squeeze = m.ndim == 2
    m = m[None] if squeeze else m
    h, w = _hw(size)
    if m.shape[-2:] != (h, w):
        m = F.interpolate(m[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    m = m.clamp(0, 1)
    return m[0] if squeeze else m


def target(kind: str, size: Size, images: torch.Tensor | None = None, *,
           string: str = "VG", corner: float = 0.25, area: float = 0.3,
           mask: torch.Tensor | np.ndarray | None = None,
           saliency: torch.Tensor | np.ndarray | None = None, **options) -> torch.Tensor:
    """The target mask of ``kind`` at ``size``: H×W, or N×H×W for per-image targets
    (``salient``, an N×H×W ``mask``). Values in [0, 1]."""
    if kind == "corners":
        return corners(size, corner)
    if kind == "text":
        return text(size, string, **options)
    if kind == "salient":
        out = salient(images, area=area, saliency=saliency, **options)
        if out.shape[-2:] != _hw(size):
            out = user_mask(out, size)
        return out
    if kind == "mask":
        if mask is None:
            raise ValueError("the 'mask' target needs mask=")
        return user_mask(mask, size)
    raise ValueError(f"unknown target kind {kind!r}; known: {', '.join(KINDS)}")


def batch_targets(kind: str, images: torch.Tensor, **options) -> torch.Tensor:
    """One target per image (N×H×W): fixed targets are repeated, salient ones per image."""
    n, _, h, w = images.shape
    t = target(kind, (h, w), images=images, **options)
    return t.expand(n, h, w).clone() if t.ndim == 2 else t
