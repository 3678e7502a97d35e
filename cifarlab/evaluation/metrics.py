"""What predictions score: accuracy with its confidence interval, the confusion matrix, per-class precision, recall
and F1, and :class:`EvalReport`, a split's accuracy, loss, calibration and confusion from the model's logits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cifarlab.evaluation.calibration import expected_calibration_error
from cifarlab.formatting import percent, text_table


def wilson_interval(correct: int, total: int) -> tuple[float, float]:
    """The 95% Wilson score interval of ``correct / total`` (scipy's); ``(nan, nan)`` for no images.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at
    0% or 100%, which matters for small test subsets.
    """
    from scipy.stats import binomtest

    if total <= 0:
        return math.nan, math.nan
    ci = binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def confusion_matrix(labels: Any, predicted: Any, classes: int) -> np.ndarray:
    """Counts, rows the true class and columns the predicted one."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def per_class_scores(confusion: np.ndarray) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class from a confusion matrix (0 where undefined)."""
    confusion = np.asarray(confusion)
    hits = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(0), confusion.sum(1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return [{"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for p, r, f, s in zip(precision, recall, f1, support)]


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
