"""Decoding one image file, of any common format, mode and size, to 32x32 RGB."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cifarlab.errors import DataError

SIZE = 32

# Only these plugins may open a file: Pillow would otherwise also try formats
# such as EPS, whose loader runs Ghostscript on the file's contents.
# (Multi-picture JPEGs from cameras open through the JPEG plugin.)
FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF", "PPM")
# File name suffixes of those formats: what dataset readers treat as images.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm"})

_HIGH_DEPTH_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in _HIGH_DEPTH_GREY:
        # Pillow's own conversion clips 16-bit values at 255, turning most of
        # the range white; keeping the top 8 bits preserves the picture.
        grey = np.clip(np.asarray(img, dtype=np.int64), 0, 65535) >> 8
        img = Image.fromarray(grey.astype(np.uint8))
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels are shown on white, as an image viewer would show them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _open(fp) -> Image.Image:
    with warnings.catch_warnings():
        # Large photos are fine to classify; only sizes past Pillow's hard
        # limit (DecompressionBombError) are refused.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(fp, formats=FORMATS) as img:
            if img.format == "JPEG":
                img.draft("RGB", (SIZE, SIZE))  # let libjpeg shrink big photos while decoding
            img.load()
            if "exif" in img.info:
                img = ImageOps.exif_transpose(img)  # camera photos stored on their side
            return _to_rgb(img)


def decode_image(source: str | os.PathLike | bytes, *, name: str | None = None) -> np.ndarray:
    """Decode a PNG/JPEG/BMP/WebP/GIF/TIFF file (or its bytes) to a ``(32, 32, 3)`` uint8 RGB array.

    Any mode (greyscale, palette, 16-bit, CMYK; transparency composited on white); other sizes are
    resized whole, uncropped, with Pillow's antialiased bicubic filter. A file that cannot be decoded
    raises :class:`DataError` naming it: ``name`` if given, else the path.
    """
    is_bytes = isinstance(source, (bytes, bytearray))
    label = name or ("<bytes>" if is_bytes else os.fspath(source))
    try:
        rgb = _open(io.BytesIO(source) if is_bytes else source)
    except FileNotFoundError:
        raise DataError(f"{label}: no such image file") from None
    except UnidentifiedImageError:  # its own message names a BytesIO object, not the file
        raise DataError(f"{label}: cannot decode image: not a PNG, JPEG, BMP, WebP, GIF, TIFF or PPM file") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many types on malformed input
        raise DataError(f"{label}: cannot decode image: {exc}") from None
    if rgb.size != (SIZE, SIZE):
        rgb = rgb.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    return np.array(rgb, dtype=np.uint8)
