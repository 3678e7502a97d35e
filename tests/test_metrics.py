"""Accuracy reports and test-time augmentation."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cifarlab.data.loader import DeviceLoader
from cifarlab.evaluation.inference import predict_logits, tta_logits
from cifarlab.evaluation.metrics import report_from_logits


class PixelProbe(nn.Module):
    """Logits that read fixed pixels, so every view of an image gives different logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0, 0, 0], x[:, 0, 0, -1], x[:, 1, 5, 7], x[:, 2, -1, 3]], dim=1)


def test_report_counts_per_class_and_confusion():
    logits = torch.eye(3)[[0, 1, 1, 2, 0]] * 5
    report = report_from_logits(logits, torch.tensor([0, 1, 2, 2, 1]), ["a", "b", "c"], "test")
    assert report.accuracy == pytest.approx(3 / 5) and report.num_images == 5
    assert report.confusion == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert report.per_class == pytest.approx([1.0, 0.5, 0.5])


def test_flip_tta_is_the_mean_of_the_image_and_its_mirror():
    x, model = torch.randn(4, 3, 8, 8), PixelProbe()
    assert torch.allclose(tta_logits(model, x), model(x))
    assert torch.allclose(tta_logits(model, x, flip=True), (model(x) + model(x.flip(3))) / 2)


def test_translate_tta_weighs_the_image_half_and_each_shift_a_quarter():
    x, model = torch.randn(4, 3, 8, 8), PixelProbe()
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    up_left, down_right = padded[..., :8, :8], padded[..., 2:, 2:]
    assert torch.equal(up_left[..., 1:, 1:], x[..., :-1, :-1])
    assert torch.equal(down_right[..., :-1, :-1], x[..., 1:, 1:])

    def flipped(v):
        return (model(v) + model(v.flip(3))) / 2

    assert torch.allclose(tta_logits(model, x, translate=1),
                          0.5 * model(x) + 0.25 * model(up_left) + 0.25 * model(down_right))
    assert torch.allclose(tta_logits(model, x, flip=True, translate=1),
                          0.5 * flipped(x) + 0.25 * flipped(up_left) + 0.25 * flipped(down_right))


def test_predict_logits_keeps_order_and_training_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.Dropout(0.5)).train()
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    loader = DeviceLoader(images, torch.zeros(10, dtype=torch.long), 3, mean=[0.5] * 3, std=[0.5] * 3)
    logits = predict_logits(model, loader, tta_flip=True, tta_translate=1)
    assert model.training  # restored after evaluating in eval mode (dropout off)
    x = (images.float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        assert torch.allclose(logits, tta_logits(model.eval(), x, flip=True, translate=1), atol=1e-5)
