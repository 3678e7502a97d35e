"""Classify image files with a trained model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cifarlab.data.images import decode_image
from cifarlab.data.loader import to_device_images
from cifarlab.devices import resolve_device
from cifarlab.errors import ConfigError
from cifarlab.evaluation.inference import split_logits
from cifarlab.models.weights import load_trained


@dataclass
class Prediction:
    """The ``k`` most probable classes of one image, most probable first."""

    file: str
    top: list[tuple[str, float]]

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {"file": self.file, "top": [{"class": c, "probability": p} for c, p in self.top]}


@torch.no_grad()
def predict(path: str | Path, images: Sequence[str | Path], *, top_k: int = 3,
            device: str = "cpu") -> list[Prediction]:
    """Top-``top_k`` classes and probabilities for each image file (any size/mode; resized to 32x32 RGB)."""
    dev = resolve_device(device)
    trained = load_trained(path, dev)
    if not 1 <= top_k <= len(trained.classes):
        raise ConfigError(f"--top-k must be between 1 and {len(trained.classes)}, got {top_k}")
    batch = np.stack([decode_image(p) for p in images])  # every file decoded before any is classified
    logits = split_logits(trained.model, trained.config, to_device_images(batch, dev), dev)
    probs, idx = logits.softmax(1).topk(top_k, dim=1)
    return [Prediction(str(f), [(trained.classes[i], float(p)) for p, i in zip(pr.tolist(), ix.tolist())])
            for f, pr, ix in zip(images, probs, idx)]
