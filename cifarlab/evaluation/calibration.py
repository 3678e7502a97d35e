"""Calibration: does a model's confidence match how often it is right?

Predictions are binned by confidence (the top-class probability) into ``bins``
equal-width intervals ``(lo, hi]`` over ``[0, 1]``, as Guo et al. (ICML 2017)
do; 15 bins is their, and the usual, choice. The expected calibration error
(ECE) is the image-weighted mean of ``|accuracy - confidence|`` over the bins:
0 for a perfectly calibrated model.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def reliability_bins(probs: Any, labels: Any, bins: int = 15) -> dict[str, Any]:
    """A reliability diagram's data from ``(N, classes)`` ``probs`` and ``(N,)`` ``labels`` (numpy or torch).

    Plain Python values: per-bin ``"confidence"``, ``"accuracy"`` and ``"count"``
    lists (an empty bin has count 0 and 0.0 for the others, to be skipped when
    drawing), the ``bins + 1`` ``"edges"`` and the ``"ece"``.
    """
    if hasattr(probs, "detach"):  # torch tensors, without importing torch here
        probs = probs.detach().float().cpu().numpy()
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if probs.ndim != 2 or labels.shape != (len(probs),):
        raise ValueError(f"probs must be (N, classes) and labels (N,), got {probs.shape} and {labels.shape}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    n = len(probs)
    confidence = probs.max(1) if n else np.zeros(0)
    correct = (probs.argmax(1) == labels).astype(np.float64) if n else np.zeros(0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # searchsorted(side="left") on the inner edges puts a value equal to an edge in the
    # lower bin, giving (lo, hi] intervals; a confidence of 0 lands in the first bin.
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(index, minlength=bins)
    safe = np.maximum(count, 1)
    mean_conf = np.bincount(index, weights=confidence, minlength=bins) / safe
    mean_acc = np.bincount(index, weights=correct, minlength=bins) / safe
    ece = float(np.sum(count / n * np.abs(mean_acc - mean_conf))) if n else float("nan")
    return {"confidence": mean_conf.tolist(), "accuracy": mean_acc.tolist(), "count": count.tolist(),
            "edges": edges.tolist(), "ece": ece}


def expected_calibration_error(probs: Any, labels: Any, bins: int = 15) -> float:
    """ECE of ``probs`` against ``labels`` with ``bins`` equal-width bins (NaN for no images)."""
    return reliability_bins(probs, labels, bins)["ece"]
