"""Decoding one image file of any common format, mode and size to 32x32 RGB."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from cifarlab.errors import DataError

SIZE = 32


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High-bit-depth greyscale: scale its own range to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max()
        arr = arr / top * 255.0 if top > 0 else arr
        img = Image.fromarray(arr.astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels are shown on white, as an image viewer would.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode_image(source: str | os.PathLike | bytes, *, name: str | None = None) -> np.ndarray:
    """Decode PNG/JPEG/BMP/WebP/GIF/TIFF bytes or a file to a ``(32, 32, 3)`` uint8 RGB array.

    Images that are not 32x32 are resized (bicubic, antialiased when shrinking).
    An unreadable file raises :class:`DataError` naming it (``name`` or the path).
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
            with fp, Image.open(fp) as img:
                img.load()
                rgb = _to_rgb(img)
    except FileNotFoundError:
        raise DataError(f"{label}: no such image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{label}: cannot decode image: {exc}") from None
    if rgb.size != (SIZE, SIZE):
        rgb = rgb.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8)
