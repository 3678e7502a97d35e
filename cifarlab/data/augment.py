"""Batch-wise augmentations on tensors already on the training device.

Every function takes a float batch ``(B, C, H, W)`` and a ``torch.Generator`` on
the same device, and draws all its randomness from that generator in one call,
so a run is reproducible and there is no per-image Python in the hot loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Reflect-pad by ``padding`` and take a random ``H x W`` crop per image."""
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * padding + 1, (2, b), device=x.device, generator=generator)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indexing gathers every image's window at once: result is (B, H, W, C).
    crops = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2).contiguous()


def flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose entry of the boolean ``mask`` ``(B,)`` is true."""
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    return flip(x, torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``size x size`` square per image, centred anywhere (clipped at the borders)."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    centres = torch.rand(2, b, device=x.device, generator=generator)
    cy = (centres[0] * h).long()[:, None]
    cx = (centres[1] * w).long()[:, None]
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= cy - size // 2) & (ys < cy - size // 2 + size)  # (B, H)
    in_x = (xs >= cx - size // 2) & (xs < cx - size // 2 + size)  # (B, W)
    hole = in_y[:, :, None] & in_x[:, None, :]
    return x.masked_fill(hole[:, None], 0.0)
