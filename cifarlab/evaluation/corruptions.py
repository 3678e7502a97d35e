"""CIFAR-10-C-style common corruptions, generated deterministically from uint8 images.

Ten corruptions of ``make_cifar_c.py`` (Hendrycks and Dietterich, ICLR 2019, ``hendrycks/robustness``) with
its parameter for each severity (:data:`CORRUPTIONS`), rebuilt with numpy, scipy, matplotlib and Pillow so any test
set can be corrupted without downloading CIFAR-10-C's 2.7 GB. Where the script calls scikit-image, the functions
scikit-image itself runs are called (scipy's ``gaussian_filter``) or ones that compute the same values
(matplotlib's HSV conversions); OpenCV's disk kernel is re-implemented with OpenCV's definition, rounded as it
rounds (float32 where OpenCV works in float32): the seven deterministic corruptions give the script's bytes at
every severity, on all 10,000 CIFAR-10 test images (JPEG q75 copy) with scikit-image 0.26, OpenCV 5.1, scipy 1.17
and matplotlib 3.11, checked once; the test
``tests/test_corruptions_reference.py`` holds the script's functions and compares 100 of them. One difference
stays: OpenCV filters defocus blur through a DFT (its kernel is 17x17), we sum directly, so values can differ
by about 1e-15, which flipped no byte on those images. The noise comes from a seeded generator: the published
distributions (the test compares them), byte-identical from run to run, but not the published files' draws.
JPEG and pixelate depend on the Pillow/libjpeg version, as they did for the script. docs/reports.md
("Robustness to common corruptions") has the full table.
"""

from __future__ import annotations

import io
import zlib
from typing import Any, Callable

import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image
from scipy.ndimage import gaussian_filter

SEVERITIES = (1, 2, 3, 4, 5)
# Images corrupted per random-number block: the noise an image gets depends only on the
# seed and its position, never on how a caller batches the images.
_BLOCK = 500


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


def _defocus_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The script's anti-aliased disk: a 17x17 binary disk, normalised, then OpenCV's 3x3 Gaussian.

    All in float32 as there: OpenCV blurs a float32 image with float32 taps, rows then columns, each a
    plain sum of three products; computing the kernel in float64 and rounding it at the end differs in
    the last bit, which after truncation to uint8 moved about 1% of values by a grey level at severity 1.
    """
    grid = np.arange(-8, 9)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius ** 2).astype(np.float32)
    disk /= disk.sum()
    # OpenCV's getGaussianKernel: normalised float64 taps, stored as float32.
    taps = np.exp(-0.5 / (alias_blur * alias_blur) * np.arange(-1, 2) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    blurred = _correlate(_correlate(disk[None, :, :, None], taps[None, :], "reflect"), taps[:, None], "reflect")
    blurred = blurred[0, ..., 0]
    rows, cols = np.nonzero(blurred)
    # The zero margin contributes nothing; dropping it keeps the padding (and the work) small.
    reach = max(abs(rows - 8).max(), abs(cols - 8).max())
    return blurred[8 - reach:9 + reach, 8 - reach:9 + reach].astype(np.float64)


def _per_image(x: np.ndarray, change: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(change(Image.fromarray(img)).convert("RGB")) for img in x])


# --- corruptions: uint8 (N, H, W, 3), the severity's parameter, a Generator -> [0, 255] floats or uint8


def _gaussian_noise(x, std, rng):
    x = x / 255.0
    return np.clip(x + rng.normal(scale=std, size=x.shape), 0, 1) * 255


def _shot_noise(x, rate, rng):
    return np.clip(rng.poisson(x / 255.0 * rate) / rate, 0, 1) * 255


def _impulse_noise(x, amount, rng):
    # Each value is hit with probability `amount`, half of the hits salt (1) and half pepper (0),
    # scikit-image's default; one uniform draw decides both, so an image's noise is the same
    # whatever follows it in its block.
    x = x / 255.0
    u = rng.random(x.shape)
    x[u < amount / 2] = 1.0
    x[(u >= amount / 2) & (u < amount)] = 0.0
    return x * 255


def _defocus_blur(x, radius_and_alias_blur, rng):
    kernel = _defocus_kernel(*radius_and_alias_blur)
    return np.clip(_correlate(x / 255.0, kernel, "reflect"), 0, 1) * 255  # numpy "reflect" is OpenCV's 101


def _gaussian_blur(x, sigma, rng):
    # What scikit-image's gaussian() calls: truncated at 4 sigma, edges replicated, each image's rows then columns.
    return np.clip(gaussian_filter(x / 255.0, (0, sigma, sigma, 0), mode="nearest", truncate=4.0), 0, 1) * 255


def _contrast(x, factor, rng):
    x = x / 255.0
    means = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - means) * factor + means, 0, 1) * 255


def _hsv_adjust(channel: int) -> Callable:
    """A corruption scaling and shifting HSV ``channel`` (1: saturation, 2: value) by ``(scale, shift)``."""
    def adjust(x, scale_and_shift, rng):
        scale, shift = scale_and_shift
        hsv = rgb_to_hsv(x / 255.0)
        hsv[..., channel] = np.clip(hsv[..., channel] * scale + shift, 0, 1)
        return np.clip(hsv_to_rgb(hsv), 0, 1) * 255

    return adjust


def _jpeg_compression(x, quality, rng):
    def compress(img: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=quality)
        return Image.open(buffer)

    return _per_image(x, compress)


def _pixelate(x, factor, rng):
    h, w = x.shape[1:3]
    small = (int(w * factor), int(h * factor))
    return _per_image(x, lambda img: img.resize(small, Image.BOX).resize((w, h), Image.BOX))


# name -> (corruption, its parameter at severities 1..5): the script's CIFAR values.
CORRUPTIONS: dict[str, tuple[Callable[[np.ndarray, Any, np.random.Generator], np.ndarray], tuple]] = {
    "gaussian_noise": (_gaussian_noise, (0.04, 0.06, 0.08, 0.09, 0.10)),  # std, pixels in [0, 1]
    "shot_noise": (_shot_noise, (500, 250, 100, 75, 50)),  # Poisson rate
    "impulse_noise": (_impulse_noise, (0.01, 0.02, 0.03, 0.05, 0.07)),  # salt-and-pepper amount
    "defocus_blur": (_defocus_blur, ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))),  # radius, alias
    "gaussian_blur": (_gaussian_blur, (0.4, 0.6, 0.7, 0.8, 1.0)),  # sigma
    "contrast": (_contrast, (0.75, 0.5, 0.4, 0.3, 0.15)),  # factor about the mean
    "brightness": (_hsv_adjust(2), ((1, 0.05), (1, 0.1), (1, 0.15), (1, 0.2), (1, 0.3))),  # HSV value + shift
    "saturate": (_hsv_adjust(1), ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2))),  # scale, shift
    "jpeg_compression": (_jpeg_compression, (80, 65, 58, 50, 40)),  # Pillow JPEG quality
    "pixelate": (_pixelate, (0.95, 0.9, 0.85, 0.75, 0.65)),  # Pillow BOX down by this factor and back
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``images`` (uint8 ``(N, H, W, 3)``) with corruption ``name`` at ``severity`` 1..5, as uint8.

    The same images, name, severity and seed give the same bytes, however many
    images are passed at once (fixed blocks, which also bound memory).
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1..5, got {severity}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    function, parameters = CORRUPTIONS[name]
    out = np.empty_like(images)
    for block, start in enumerate(range(0, len(images), _BLOCK)):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), severity, block])
        changed = function(images[start:start + _BLOCK], parameters[severity - 1], rng)
        # np.uint8() of the script truncates; the values are already within [0, 255].
        out[start:start + _BLOCK] = changed if changed.dtype == np.uint8 else np.floor(changed).astype(np.uint8)
    return out
