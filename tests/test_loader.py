"""The device-resident data path and its batch-wise augmentations."""

import pytest
import torch

from cifarlab.config import AugmentConfig, load
from cifarlab.data.augment import cutout, random_crop, random_flip
from cifarlab.data.loader import DeviceLoader, normalize
from cifarlab.errors import ConfigError


def _images(n=37):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


def test_every_training_image_exactly_once_per_epoch_and_labels_follow():
    images = _images()
    # Encode each image's index in its pixels so we can tell which image a batch row is.
    images[:, 0, 0, 0] = torch.arange(37, dtype=torch.uint8)
    labels = torch.arange(37)
    loader = DeviceLoader(images, labels, 8, mean=[0, 0, 0], std=[1, 1, 1], shuffle=True,
                          generator=torch.Generator().manual_seed(1))
    for _ in range(2):
        seen = []
        for x, y in loader:
            ids = (x[:, 0, 0, 0] * 255).round().long()
            assert torch.equal(ids, y)  # labels travel with their images through the shuffle
            seen += y.tolist()
        assert sorted(seen) == list(range(37))
    assert len(loader) == 5


def test_shuffle_differs_between_epochs_and_is_reproducible():
    def orders(seed):
        loader = DeviceLoader(_images(), torch.arange(37), 37, mean=[0] * 3, std=[1] * 3, shuffle=True,
                              generator=torch.Generator().manual_seed(seed))
        return [next(iter(loader))[1].tolist() for _ in range(2)]

    a, b = orders(3), orders(3)
    assert a == b and a[0] != a[1]


def test_drop_last_drops_the_incomplete_batch():
    loader = DeviceLoader(_images(), torch.arange(37), 8, mean=[0] * 3, std=[1] * 3, drop_last=True)
    assert len(loader) == 4 and loader.num_images == 32
    assert all(x.shape[0] == 8 for x, _ in loader)


def test_normalize_matches_to_tensor_then_normalize():
    images = _images(4)
    out = normalize(images, [0.5, 0.4, 0.3], [0.2, 0.25, 0.5])
    expected = (images.float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / \
        torch.tensor([0.2, 0.25, 0.5]).view(1, 3, 1, 1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_flipped_batch_equals_flipped_images():
    x = torch.randn(64, 3, 32, 32)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, xi.flip(2)) for o, xi in zip(out, x)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54  # about half


def test_alternating_flip_mirrors_each_image_in_every_other_epoch():
    images, plain = _images(), _images().float() / 255
    loader = DeviceLoader(images, torch.arange(37), 8, mean=[0] * 3, std=[1] * 3, shuffle=True,
                          augment=AugmentConfig(flip=True, flip_alternate=True),
                          generator=torch.Generator().manual_seed(0))

    def mirrored(epoch):
        loader.epoch, seen = epoch, {}
        for x, y in loader:
            for xi, i in zip(x, y.tolist()):
                seen[i] = torch.allclose(xi, plain[i].flip(2))
                assert seen[i] or torch.allclose(xi, plain[i])
        return seen

    first, second, third = mirrored(1), mirrored(2), mirrored(3)
    assert sorted(first) == list(range(37))
    assert all(first[i] != second[i] for i in first) and first == third
    assert 5 < sum(first.values()) < 32  # the first epoch's choice is random


def test_alternating_flip_needs_flip():
    assert load("fast-cpu", data__augment__flip_alternate=True).data.augment.flip_alternate
    with pytest.raises(ConfigError, match="data.augment.flip_alternate"):
        load("fast-cpu", data__augment__flip=False, data__augment__flip_alternate=True)


def test_crops_stay_in_bounds_and_are_windows_of_the_padded_image():
    x = torch.randn(16, 3, 32, 32)
    pad = 4
    out = random_crop(x, pad, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
    shifts = set()
    for i in range(16):
        match = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                 if torch.equal(padded[i, :, dy:dy + 32, dx:dx + 32], out[i])]
        assert match, f"image {i} is not a 32x32 window of its padded version"
        shifts.add(match[0])
    assert len(shifts) > 1


def test_cutout_zeroes_one_square_of_at_most_size_squared():
    x = torch.ones(32, 3, 32, 32)
    out = cutout(x, 8, torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum((1, 2))
    assert (zeros <= 64).all() and (zeros > 0).all()
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # same hole in every channel


def test_augmented_loader_is_deterministic_for_a_seed():
    aug = AugmentConfig(crop_padding=2, flip=True, cutout=4)

    def first(seed):
        loader = DeviceLoader(_images(), torch.arange(37), 16, mean=[0.5] * 3, std=[0.5] * 3, augment=aug,
                              shuffle=True, generator=torch.Generator().manual_seed(seed))
        return next(iter(loader))[0]

    assert torch.equal(first(5), first(5)) and not torch.equal(first(5), first(6))


def test_size_resizes_the_augmented_batch_and_none_leaves_it():
    aug = AugmentConfig(crop_padding=2, flip=True, cutout=0)

    def batch(size):
        loader = DeviceLoader(_images(8), torch.arange(8), 8, mean=[0] * 3, std=[1] * 3, augment=aug,
                              generator=torch.Generator().manual_seed(5))
        loader.size = size
        return next(iter(loader))[0]

    full, small = batch(None), batch(20)
    assert full.shape == (8, 3, 32, 32) and small.shape == (8, 3, 20, 20)
    # The same draws, then the resize: the small batch is the full one scaled down, not another crop.
    expected = torch.nn.functional.interpolate(full, size=(20, 20), mode="bilinear", antialias=True,
                                               align_corners=False)
    assert torch.allclose(small, expected)
