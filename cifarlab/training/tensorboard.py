"""TensorBoard event files for a run, written when ``train.tensorboard: true``.

The events go into the run directory itself, so ``tensorboard --logdir runs``
lists every run under its directory name. Every scalar is plotted against the
optimizer step, epoch metrics included: one x axis for all, and a resumed run
can discard what the killed session logged after its last checkpoint
(``purge_step``). The hyperparameters (the flattened config) and the final
metrics go to TensorBoard's HParams tab when the run finishes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cifarlab.errors import ConfigError

# summary.json keys shown as HParams metrics: the numbers runs are compared by.
_FINAL_METRICS = ("test_acc", "val_acc", "best_val_acc", "train_seconds", "wall_seconds")


def require_tensorboard():
    """torch's ``SummaryWriter``, or a one-line ConfigError naming the extra when TensorBoard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's module imports the tensorboard package, which is optional
        raise ConfigError("train.tensorboard: true needs the tensorboard extra: "
                          "pip install 'cifarlab[tensorboard]'") from None
    return SummaryWriter


def flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """The nested config as ``{"optim.lr": 0.001, ...}`` with values HParams accepts (lists and None as text)."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class TensorBoardLog:
    """Writes one run's scalars and hyperparameters.

    ``resume_step``: the last optimizer step of the checkpoint a resumed run
    continues from; anything a killed session logged after it is discarded.
    """

    def __init__(self, run_dir: str | Path, resume_step: int = 0):
        writer_class = require_tensorboard()
        self.run_dir = Path(run_dir)
        self.writer = writer_class(log_dir=str(self.run_dir), purge_step=resume_step + 1 if resume_step else None)

    def steps(self, records: list[dict[str, Any]]) -> None:
        """Per-step loss and learning rate from ``{"step", "loss"[, "lr"]}`` records."""
        for r in records:
            self.writer.add_scalar("train/loss", r["loss"], r["step"])
            if r.get("lr") is not None:
                self.writer.add_scalar("train/lr", r["lr"], r["step"])

    def epoch(self, record: dict[str, Any], step: int) -> None:
        """One epoch record's accuracies, losses and speed, at the optimizer step it ended on."""
        for tag, key in (("accuracy/train", "train_acc"), ("accuracy/val", "val_acc"), ("accuracy/test", "test_acc"),
                         ("loss/train", "train_loss"), ("loss/val", "val_loss"),
                         ("speed/images_per_s", "images_per_s")):
            if record.get(key) is not None:
                self.writer.add_scalar(tag, record[key], step)
        self.writer.add_scalar("epoch", record["epoch"], step)
        self.writer.flush()

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        """Record the hyperparameters with the final metrics, and close the files."""
        metrics = {f"hparam/{k}": float(summary[k]) for k in _FINAL_METRICS if summary.get(k) is not None}
        # run_name "." keeps the HParams record in this run's directory, so TensorBoard shows one run, not two.
        self.writer.add_hparams(flat_hparams(config), metrics, run_name=".")
        self.close()

    def close(self) -> None:
        """Flush and close the event file (also on a run that stopped early)."""
        self.writer.close()
