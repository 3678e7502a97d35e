"""Evaluate a trained model on the test set or the validation split."""

from __future__ import annotations

from pathlib import Path

import torch

from cifarlab.data.dataset import load_dataset
from cifarlab.data.split import Splits, prepare_splits
from cifarlab.devices import resolve_device
from cifarlab.errors import ConfigError
from cifarlab.evaluation.inference import evaluate_split
from cifarlab.evaluation.metrics import EvalReport
from cifarlab.models.weights import Trained, load_trained


def load_run_splits(path: str | Path, data, device: str, progress: bool, *, batch_size: int | None = None,
                    max_test_images: int | None = None) -> tuple[Trained, torch.device, Splits]:
    """The model at ``path`` on ``device``, the device, and its run's splits of ``data`` (see :func:`evaluate`)."""
    dev = resolve_device(device)
    trained = load_trained(path, dev)
    cfg = trained.config
    if batch_size is not None:
        cfg.train.eval_batch_size = batch_size
    if max_test_images is not None:
        cfg.data.max_test_images = min(max_test_images, cfg.data.max_test_images or max_test_images)
    if data is None or isinstance(data, (str, Path)):
        data = load_dataset(data if data is not None else cfg.data.path, progress=progress)
    return trained, dev, prepare_splits(cfg, data, dev)


def evaluate(path: str | Path, *, data=None, split: str = "test", device: str = "auto",
             batch_size: int | None = None, progress: bool = True) -> EvalReport:
    """Accuracy, per-class accuracy and confusion matrix of the model at ``path``.

    ``path`` is a run directory or weights file; ``data`` a dataset path or a loaded
    :class:`cifarlab.data.CifarData` (default: the data the model was trained on).
    The validation split is the same stratified one the run held out. ``batch_size``
    (images per forward pass) replaces the run's ``train.eval_batch_size``.
    """
    if split not in ("test", "val"):
        raise ConfigError(f"--split must be test or val, got {split!r}")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    trained, dev, splits = load_run_splits(path, data, device, progress, batch_size=batch_size)
    chosen = getattr(splits, split)
    if chosen is None:
        raise ConfigError(f"{path}: the run used data.val_size=0, so it has no validation split")
    return evaluate_split(trained.model, trained.config, chosen, dev)
