"""CIFAR-10-C-style corruptions: deterministic, uint8 in and out, worse with severity."""

from __future__ import annotations

import numpy as np
import pytest

import synthetic
from cifarlab.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return synthetic.make_arrays(3, seed=1)[0]  # 30 striped, coloured, noisy 32x32 images


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_shape_dtype_and_determinism(images, name):
    first = corrupt(images, name, 3, seed=7)
    assert first.dtype == np.uint8 and first.shape == images.shape
    assert corrupt(images, name, 3, seed=7).tobytes() == first.tobytes()
    assert not np.array_equal(first, images)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise"])
def test_noise_depends_on_the_seed_but_not_on_the_batch(images, name):
    assert not np.array_equal(corrupt(images, name, 3, seed=0), corrupt(images, name, 3, seed=1))
    # An image's noise comes from its seed and position, not from the images beside it.
    many = np.concatenate([images] * 20)  # 600 images: more than one random-number block
    assert np.array_equal(corrupt(many, name, 3)[:30], corrupt(images, name, 3))


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS if n != "saturate"])
def test_distortion_grows_with_severity(images, name):
    quality = [psnr(corrupt(images, name, s), images) for s in SEVERITIES]
    assert all(a > b for a, b in zip(quality, quality[1:])), quality


def test_saturate_moves_away_from_the_original_at_both_ends(images):
    # CIFAR-10-C's saturate desaturates at severities 1-2 and oversaturates at 3-5, so only
    # each end is monotonic: severity 2 is further from the original than 1, 5 than 3.
    quality = [psnr(corrupt(images, "saturate", s), images) for s in SEVERITIES]
    assert quality[1] < quality[0] and quality[4] < quality[3] < quality[2]


def test_known_values():
    grey = np.full((1, 32, 32, 3), 100, np.uint8)
    # Contrast pulls towards the image's mean, so a flat image is unchanged (but for the
    # script's truncation to uint8, which can lose one level: 100/255*255 = 99.999...).
    assert np.abs(corrupt(grey, "contrast", 5).astype(int) - 100).max() <= 1
    # Brightness adds 0.3 to the HSV value at severity 5: 100 + 0.3 * 255 = 176.5 -> 176.
    assert np.all(corrupt(grey, "brightness", 5) == 176)
    # Blurs of a flat image stay flat (the kernels sum to one; borders replicate or reflect).
    for name in ("gaussian_blur", "defocus_blur"):
        assert np.abs(corrupt(grey, name, 5).astype(int) - 100).max() <= 1
    # Impulse noise sets values to 0 or 255 only.
    noisy = corrupt(np.full((4, 32, 32, 3), 100, np.uint8), "impulse_noise", 5)
    assert set(np.unique(noisy)) <= {0, 100, 255}


def test_bad_arguments_are_rejected(images):
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(images, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(images, "contrast", 6)
    with pytest.raises(ValueError, match="uint8"):
        corrupt(images.astype(np.float32), "contrast", 1)
