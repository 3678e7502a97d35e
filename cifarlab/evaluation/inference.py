"""Running a model over images as a run evaluates: its normalisation, batch size, precision and test-time views."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cifarlab.config import Config
from cifarlab.data.loader import DeviceLoader
from cifarlab.data.split import Split
from cifarlab.devices import autocast, resolve_precision
from cifarlab.evaluation.metrics import EvalReport, report_from_logits


def tta_logits(model: nn.Module, x: torch.Tensor, *, flip: bool = False, translate: int = 0) -> torch.Tensor:
    """Float32 logits of ``model`` on a normalised batch, averaged over test-time views.

    ``flip``: the mean over each image and its mirror image. ``translate``: half
    the weight goes to the image itself, a quarter each to it shifted by
    ``translate`` pixels up-left and down-right (reflect-padded), each of them
    flip-averaged too when ``flip`` is on: airbench's six-view average.
    """
    def views(inputs: torch.Tensor) -> torch.Tensor:
        logits = model(inputs).float()
        return 0.5 * (logits + model(inputs.flip(3)).float()) if flip else logits

    logits = views(x)
    if translate:
        h, w = x.shape[-2:]
        padded = F.pad(x, (translate,) * 4, mode="reflect")
        shifted = views(padded[..., :h, :w]) + views(padded[..., 2 * translate:, 2 * translate:])
        logits = 0.5 * logits + 0.25 * shifted
    return logits


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DeviceLoader, *, tta_flip: bool = False, tta_translate: int = 0,
                   autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Float32 logits for every image of an unshuffled loader, in order, with :func:`tta_logits`' views."""
    was_training = model.training
    model.eval()
    outputs = []
    for x, _ in loader:
        with autocast(loader.images.device, autocast_dtype):
            outputs.append(tta_logits(model, x, flip=tta_flip, translate=tta_translate))
    model.train(was_training)
    return torch.cat(outputs)


def split_logits(model: nn.Module, cfg: Config, images: torch.Tensor, device: torch.device,
                 views: bool = True) -> torch.Tensor:
    """Float32 logits of ``model`` for uint8 NCHW ``images`` on ``device``, as the run ``cfg`` evaluates.

    With its normalisation, batch size, memory layout, precision and test-time
    views, so the trainer, ``evaluate`` and ``predict`` all see the same numbers.
    ``views=False``: the plain images only, without the test-time views.
    """
    unlabelled = torch.zeros(len(images), dtype=torch.long, device=images.device)  # the loader pairs every image
    loader = DeviceLoader(images, unlabelled, cfg.train.eval_batch_size, mean=cfg.data.mean, std=cfg.data.std,
                          channels_last=cfg.train.channels_last)
    return predict_logits(model, loader, tta_flip=views and cfg.train.tta_flip,
                          tta_translate=cfg.train.tta_translate if views else 0,
                          autocast_dtype=resolve_precision(cfg.train.precision, device))


def evaluate_split(model: nn.Module, cfg: Config, split: Split, device: torch.device,
                   views: bool = True) -> EvalReport:
    """Accuracy, loss, per-class accuracy, confusion matrix and probabilities of ``model`` on ``split``.

    ``views=False`` skips the run's test-time views (see :func:`split_logits`).
    """
    logits = split_logits(model, cfg, split.images, device, views)
    return report_from_logits(logits, split.labels, split.classes, split.name)
