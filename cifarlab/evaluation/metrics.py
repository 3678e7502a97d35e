"""Evaluating a model on a split: logits with the run's views and precision, then accuracy, loss, confusion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cifarlab.config import Config
from cifarlab.data.loader import DeviceLoader
from cifarlab.data.split import Split
from cifarlab.devices import resolve_precision
from cifarlab.evaluation.calibration import expected_calibration_error
from cifarlab.evaluation.scores import confusion_matrix, per_class_scores
from cifarlab.formatting import percent, text_table


@dataclass
class EvalReport:
    """What a model got right on one split: overall, per class and as a confusion matrix."""

    split: str
    accuracy: float
    loss: float
    num_images: int
    classes: list[str]
    per_class: list[float]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    ece: float = float("nan")  # expected calibration error, 15 confidence bins
    probs: torch.Tensor | None = field(default=None, repr=False)  # float32 softmax per image, in split order

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"split": self.split, "accuracy": self.accuracy, "loss": self.loss, "ece": self.ece,
                "num_images": self.num_images, "per_class": dict(zip(self.classes, self.per_class)),
                "classes": self.classes, "confusion": self.confusion}

    def format_table(self) -> str:
        """Per-class accuracy (recall) and the confusion matrix as aligned text."""
        numbers = range(1, len(self.classes) + 1)
        return "\n".join([
            f"{self.split} accuracy: {percent(self.accuracy)} on {self.num_images} images (loss {self.loss:.4f}, "
            f"ECE {percent(self.ece)})", "",
            *text_table(["class", "accuracy"], [[c, percent(a)] for c, a in zip(self.classes, self.per_class)],
                        right={1}), "",
            "confusion matrix (rows: true class, columns: predicted)",
            *text_table(["", *(c[:5] for c in self.classes)],
                        [[c, *map(str, row)] for c, row in zip(self.classes, self.confusion)], right=numbers)])


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
    device_type = loader.images.device.type
    for x, _ in loader:
        with torch.autocast(device_type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            outputs.append(tta_logits(model, x, flip=tta_flip, translate=tta_translate))
    model.train(was_training)
    return torch.cat(outputs)


def report_from_logits(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], split: str) -> EvalReport:
    """Build an :class:`EvalReport` from logits and true labels."""
    labels = labels.to(logits.device)
    pred = logits.argmax(1)
    confusion = confusion_matrix(labels.cpu(), pred.cpu(), len(classes))
    probs = logits.softmax(1)
    return EvalReport(split=split, num_images=len(labels), classes=list(classes),
                      accuracy=float((pred == labels).float().mean()) if len(labels) else float("nan"),
                      loss=float(F.cross_entropy(logits, labels)) if len(labels) else float("nan"),
                      per_class=[s["recall"] for s in per_class_scores(confusion)],
                      confusion=confusion.tolist(), ece=expected_calibration_error(probs, labels), probs=probs)


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
