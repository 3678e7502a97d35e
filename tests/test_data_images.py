"""``decode_image``: any common format, mode and size becomes a 32x32 RGB uint8 array."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cifarlab.data import decode_image
from cifarlab.errors import DataError

# Each format with the modes Pillow can write it in.
_WRITABLE = {
    "PNG": ["RGB", "RGBA", "L", "P", "I;16", "LA", "1"],
    "JPEG": ["RGB", "L", "CMYK"],
    "BMP": ["RGB", "RGBA", "L", "P"],
    "WEBP": ["RGB", "RGBA", "L", "P"],
    "GIF": ["P"],
    "TIFF": ["RGB", "CMYK", "I;16"],
}


def _image(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, size[::-1], dtype=np.uint16))
    return Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).convert(mode)


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, mode", [(f, m) for f, modes in _WRITABLE.items() for m in modes])
@pytest.mark.parametrize("size", [(32, 32), (100, 57)])
def test_any_format_mode_and_size_gives_32x32_rgb(fmt, mode, size):
    out = decode_image(_encode(_image(mode, size), fmt), name="x")
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and out.flags.writeable


def test_32x32_rgb_png_is_returned_unchanged():
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(_encode(Image.fromarray(pixels), "PNG")), pixels)


def test_resizing_keeps_a_plain_colour():
    img = Image.new("RGB", (100, 57), (10, 200, 30))
    assert (decode_image(_encode(img, "PNG")) == [10, 200, 30]).all()


def test_16_bit_greyscale_keeps_its_brightness():
    grey = np.full((32, 32), 128 * 256, dtype=np.uint16)  # mid grey in 16 bits
    grey[:16] = 65535
    out = decode_image(_encode(Image.fromarray(grey), "PNG"))
    assert (out[:16] == 255).all() and (out[16:] == 128).all()


def test_transparency_is_shown_on_white():
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (0, 0, 32, 16))  # top half fully transparent blue
    out = decode_image(_encode(rgba, "PNG"))
    assert (out[:16] == 255).all() and (out[16:] == [255, 0, 0]).all()
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(0, (0, 0, 32, 16))
    out = decode_image(_encode(palette, "PNG", transparency=0))
    assert (out[:16] == 255).all() and (out[16:] == [0, 255, 0]).all()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (32, 32), (255, 0, 0))
    img.paste((0, 0, 255), (0, 16, 32, 32))  # red over blue
    exif = Image.Exif()
    exif[0x0112] = 3  # stored upside down
    out = decode_image(_encode(img, "JPEG", exif=exif, quality=95))
    assert out[4, 16, 2] > 200 and out[28, 16, 0] > 200  # shown blue over red


def test_path_input(tmp_path):
    path = tmp_path / "a.bmp"
    path.write_bytes(_encode(_image("RGB", (40, 40)), "BMP"))
    assert decode_image(path).shape == (32, 32, 3) and decode_image(str(path)).shape == (32, 32, 3)


@pytest.mark.parametrize("data, reason", [
    (b"not an image", "not a PNG, JPEG, BMP, WebP, GIF, TIFF or PPM file"),
    (_encode(_image("RGB", (64, 64)), "PNG")[:2000], ""),  # truncated
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n", "not a PNG"),  # EPS would run Ghostscript
    (b"", "not a PNG"),
])
def test_bad_bytes_raise_a_data_error_naming_the_file(data, reason):
    with pytest.raises(DataError, match=f"^train/cat/x.png: cannot decode image: {reason}"):
        decode_image(data, name="train/cat/x.png")


def test_bad_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 broken")
    with pytest.raises(DataError, match=r"bad\.jpg: cannot decode image"):
        decode_image(bad)
    with pytest.raises(DataError, match=r"gone\.png: no such image file"):
        decode_image(tmp_path / "gone.png")
