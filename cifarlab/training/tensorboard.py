"""TensorBoard event files for a run, written when ``train.tensorboard: true``.

The events go into the run directory itself, so ``tensorboard --logdir runs``
lists every run under its directory name. Every scalar is plotted against the
optimizer step, epoch metrics included: one x axis for all, and a resumed run
can discard what the killed session logged after its last checkpoint
(``purge_step``). The hyperparameters (the flattened config) and the final
metrics go to TensorBoard's HParams tab when the run finishes.

The event file is written here, not by torch's ``SummaryWriter``: its writer
thread meets a full disk first, prints a traceback of its own and hands the
main thread an ``OSError`` without a file name. Written through
:func:`~cifarlab.fileio.append_bytes`, a disk fault is a ``DiskError`` naming
the file, and no torn record is left in it.
"""

from __future__ import annotations

import io
import itertools
import os
import socket
import time
from pathlib import Path
from typing import Any

from cifarlab.errors import ConfigError
from cifarlab.fileio import append_bytes, disk_errors

# TensorBoard's own file names: one process may start two event files in the same second (a resume in a notebook).
_SERIAL = itertools.count()

# summary.json keys shown as HParams metrics: the numbers runs are compared by.
_FINAL_METRICS = ("test_acc", "val_acc", "best_val_acc", "train_seconds", "wall_seconds")


def require_tensorboard() -> None:
    """A one-line ConfigError naming the extra when TensorBoard is missing."""
    try:
        import torch.utils.tensorboard  # noqa: F401 - the hparams helper used here; it imports tensorboard
    except ImportError:  # torch's module imports the tensorboard package, which is optional
        raise ConfigError("train.tensorboard: true needs the tensorboard extra: "
                          "pip install 'cifarlab[tensorboard]'") from None


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
    Events are kept in memory until :meth:`epoch` or :meth:`finish` appends
    them; a disk fault then raises ``DiskError``.
    """

    def __init__(self, run_dir: str | Path, resume_step: int = 0):
        require_tensorboard()
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.run_dir = Path(run_dir)
        self.path = self.run_dir / (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                                    f"{os.getpid()}.{next(_SERIAL)}")
        self._pending = io.BytesIO()
        self._records = RecordWriter(self._pending)
        with disk_errors(self.run_dir):
            self.run_dir.mkdir(parents=True, exist_ok=True)
        purge_step = resume_step + 1 if resume_step else 0
        self._add(step=purge_step, file_version="brain.Event:2")
        if purge_step:  # TensorBoard drops the steps from here on that earlier files of this run logged
            from tensorboard.compat.proto.event_pb2 import SessionLog

            self._add(step=purge_step, session_log=SessionLog(status=SessionLog.START))
        self.flush()

    def steps(self, records: list[dict[str, Any]]) -> None:
        """Per-step loss and learning rate from ``{"step", "loss"[, "lr"]}`` records."""
        for r in records:
            self._scalar("train/loss", r["loss"], r["step"])
            if r.get("lr") is not None:
                self._scalar("train/lr", r["lr"], r["step"])

    def epoch(self, record: dict[str, Any], step: int) -> None:
        """One epoch record's accuracies, losses and speed, at the optimizer step it ended on; written now."""
        for tag, key in (("accuracy/train", "train_acc"), ("accuracy/val", "val_acc"), ("accuracy/test", "test_acc"),
                         ("loss/train", "train_loss"), ("loss/val", "val_loss"),
                         ("speed/images_per_s", "images_per_s")):
            if record.get(key) is not None:
                self._scalar(tag, record[key], step)
        self._scalar("epoch", record["epoch"], step)
        self.flush()

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        """Record the hyperparameters with the final metrics, and write what is pending."""
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"hparam/{k}": float(summary[k]) for k in _FINAL_METRICS if summary.get(k) is not None}
        # In this run's own event file, so TensorBoard shows one run with its hyperparameters, not two runs.
        for part in hparams(flat_hparams(config), metrics):
            self._add(summary=part)
        for tag, value in metrics.items():
            self._scalar(tag, value, 0)
        self.flush()

    def flush(self) -> None:
        """Append the pending events to the event file."""
        data = self._pending.getvalue()
        if data:
            append_bytes(self.path, data)
            self._pending.seek(0)
            self._pending.truncate()

    def _scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._add(step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=float(value))]))

    def _add(self, **fields: Any) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._records.write(Event(wall_time=time.time(), **fields).SerializeToString())
