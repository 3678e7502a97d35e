"""The device-resident data path: the whole split lives on the device as uint8.

Each epoch draws one permutation; each batch is gathered by index, scaled to
0..1, normalised and augmented on the device. This replaces a DataLoader with
worker processes and per-image transforms, which on a 2-core CPU costs more
than the network itself, and on a GPU would leave it waiting.
"""

from __future__ import annotations

import warnings
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cifarlab.config import AugmentConfig
from cifarlab.data.augment import cutout, flip, random_crop, random_flip


def to_device_images(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 array -> contiguous ``(N, C, H, W)`` uint8 tensor on ``device``."""
    with warnings.catch_warnings():
        # The cached arrays are read-only memory maps; the tensor over one is only read, as the permute copies.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        source = torch.from_numpy(np.ascontiguousarray(images))
    return source.to(device).permute(0, 3, 1, 2).contiguous()


def affine(mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor,
           device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` of shape ``(1, C, 1, 1)`` with ``pixel * scale + shift == (pixel / 255 - mean) / std``."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * std_t), -mean_t / std_t


def normalize(batch_uint8: torch.Tensor, mean: Sequence[float] | torch.Tensor,
              std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` -> float32 scaled to 0..1, then ``(x - mean) / std`` per channel."""
    scale, shift = affine(mean, std, batch_uint8.device)
    return torch.addcmul(shift, batch_uint8.float(), scale)


class DeviceLoader:
    """Iterate ``(inputs, labels)`` batches of a device-resident split.

    ``augment=None`` (or all-off) gives the plain normalised images, as for
    evaluation. ``shuffle`` draws a fresh permutation from ``generator`` each epoch;
    ``drop_last`` drops the incomplete final batch. Setting ``size`` resizes every
    batch to ``size x size`` after augmentation (progressive resizing). ``epoch``
    (set by the trainer) drives ``augment.flip_alternate``.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        augment: AugmentConfig | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        channels_last: bool = False,
    ):
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        # Built once, and one fused op per batch: at batch 60 the per-op overhead is most of the cost.
        self.scale, self.shift = affine(mean, std, images.device)
        self.augment = augment
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator = generator or torch.Generator(device=images.device)
        self.channels_last = channels_last
        self.size: int | None = None
        self.epoch = 1
        # Alternating flip: each image's mirroring is drawn once, for its first epoch, and then alternates,
        # so every two epochs show each image both ways (the speed run's trick: more accuracy per epoch).
        self.flip_first = torch.rand(images.shape[0], device=images.device, generator=self.generator) < 0.5 \
            if augment is not None and augment.flip_alternate else None

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        """Images yielded per epoch (fewer than the split when ``drop_last`` trims)."""
        return len(self) * self.batch_size if self.drop_last else self.images.shape[0]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.images.shape[0]
        device = self.images.device
        if self.shuffle:
            order = torch.randperm(n, device=device, generator=self.generator)
        else:
            order = torch.arange(n, device=device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self._transform(torch.addcmul(self.shift, self.images[idx].float(), self.scale), idx)
            yield x, self.labels[idx]

    def _transform(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        aug = self.augment
        if aug is not None:
            x = random_crop(x, aug.crop_padding, self.generator)
            if self.flip_first is not None:
                x = flip(x, self.flip_first[idx] ^ (self.epoch % 2 == 0))
            elif aug.flip:
                x = random_flip(x, self.generator)
            x = cutout(x, aug.cutout, self.generator)
        if self.size is not None and self.size != x.shape[-1]:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
