"""Evaluate a trained model on the test set or the validation split."""

from __future__ import annotations

from pathlib import Path

from cifarlab.data.loader import DeviceLoader
from cifarlab.errors import ConfigError
from cifarlab.evaluation.metrics import EvalReport, evaluate_loader
from cifarlab.training.checkpoint import load_trained
from cifarlab.training.devices import prepare_splits, resolve_device, resolve_precision


def evaluate(path: str | Path, *, data=None, split: str = "test", device: str = "auto",
             batch_size: int | None = None, progress: bool = True) -> EvalReport:
    """Accuracy, per-class accuracy and confusion matrix of the model at ``path``.

    ``path`` is a run directory or weights file; ``data`` a dataset path or a loaded
    :class:`cifarlab.data.CifarData` (default: the data the model was trained on).
    The validation split is the same stratified one the run held out.
    """
    if split not in ("test", "val"):
        raise ConfigError(f"--split must be test or val, got {split!r}")
    dev = resolve_device(device)
    trained = load_trained(path, dev)
    cfg = trained.config
    if data is None or isinstance(data, (str, Path)):
        from cifarlab.data import load_dataset

        data = load_dataset(data if data is not None else cfg.data.path, progress=progress)
    splits = prepare_splits(cfg, data, dev)
    chosen = splits.test if split == "test" else splits.val
    if chosen is None:
        raise ConfigError(f"{path}: the run used data.val_size=0, so it has no validation split")
    loader = DeviceLoader(*chosen, batch_size or cfg.train.eval_batch_size, mean=cfg.data.mean, std=cfg.data.std,
                          channels_last=cfg.train.channels_last)
    return evaluate_loader(trained.model, loader, splits.classes, split, tta_flip=cfg.train.tta_flip,
                           tta_translate=cfg.train.tta_translate,
                           autocast_dtype=resolve_precision(cfg.train.precision, dev))
