"""The training loop: one function, ``train(config) -> TrainResult``.

Read top to bottom: resolve the config and run directory, put the data on the
device, build model and optimizer, (restore a checkpoint), then per epoch: train,
validate, log one line, checkpoint. At the end: final weights, test accuracy,
plots. Losses stay on the device between log points so a GPU step never waits
for the host.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from cifarlab import config as config_mod
from cifarlab.config import Config
from cifarlab.data.loader import DeviceLoader, normalize
from cifarlab.errors import CifarlabError, ConfigError
from cifarlab.evaluation.metrics import EvalReport, evaluate_loader
from cifarlab.models import build_model
from cifarlab.training import checkpoint as ckpt
from cifarlab.training.ema import EMA
from cifarlab.training.optim import build_optimizer, lr_multiplier
from cifarlab.training.devices import prepare_splits, resolve_device, resolve_precision
from cifarlab.inspection.arch import describe_arch
from cifarlab.rundir import RunDir, environment, new_run_dir, timestamp

EpochCallback = Callable[[dict[str, Any]], None]

# How often (in steps) the progress bar's loss is refreshed and checked for NaN;
# each refresh is one host sync, so it is kept well away from every step.
_SYNC_EVERY = 20


class TrainingDiverged(CifarlabError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What a finished run left behind."""

    run_dir: Path
    summary: dict[str, Any]
    config: Config


def train(
    config: Config | dict | str | Path | None = None,
    *,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    data=None,
    callbacks: Sequence[EpochCallback] = (),
    progress: bool = True,
    verbose: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Train a network as ``config`` describes and return its run directory and summary.

    ``config`` is a :class:`Config`, a dict, a preset name or a YAML path;
    ``overrides`` use ``__`` for dots (``train__epochs=1``). ``resume`` continues
    the run directory of a killed run from its last checkpoint. ``data`` reuses an
    already-loaded :class:`cifarlab.data.CifarData`. Each callback receives the
    epoch's metrics; if one raises, the epoch's checkpoint is already saved.
    """
    if resume is not None:
        run_dir = RunDir(resume)
        if not run_dir.exists():
            raise ConfigError(f"{run_dir.path}: cannot resume, no {RunDir.CONFIG} (not a cifarlab run directory)")
        if overrides or config is not None:
            raise ConfigError("--resume continues a run with its recorded config; drop the other options")
        cfg = run_dir.config()
    else:
        cfg = config_mod.load(config, **overrides)
        if cfg.data.path is not None:  # recorded absolute, so evaluate works from any folder
            cfg.data.path = str(Path(cfg.data.path).expanduser().resolve())
        run_dir = new_run_dir(out_dir, cfg.preset)
    return _Run(cfg, run_dir, resume is not None, data, list(callbacks), progress, verbose).run()


class _Run:
    """State of one training run; ``run()`` is the loop."""

    def __init__(self, cfg: Config, run_dir: RunDir, resuming: bool, data, callbacks: list[EpochCallback],
                 progress: bool, verbose: bool):
        self.cfg, self.files, self.resuming = cfg, run_dir, resuming
        self.callbacks, self.progress, self.verbose = callbacks, progress, verbose
        self.device = resolve_device(cfg.train.device)
        self.autocast = resolve_precision(cfg.train.precision, self.device)
        self.ckpt_path = run_dir.path / RunDir.CHECKPOINT
        t0 = time.perf_counter()
        if data is None:
            from cifarlab.data import load_dataset

            data = load_dataset(cfg.data.path, progress=progress)
        self.splits = prepare_splits(cfg, data, self.device)
        self.data_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ setup

    def _build(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.train.seed)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model).to(self.device)
        init = getattr(self.model, "init_from_data", None)
        if init is not None:  # e.g. the fast net's whitening layer; a resume overwrites it from the checkpoint
            sample = self.splits.train[0][:5000]
            init(normalize(sample, cfg.data.mean, cfg.data.std))
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.arch = describe_arch(self.model)
        self.params = self.arch["params"]
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.ema = EMA(self.model, cfg.train.ema) if cfg.train.ema > 0 else None
        self.forward = torch.compile(self.model) if cfg.train.compile else self.model
        x, y = self.splits.train
        self.train_loader = DeviceLoader(
            x, y, cfg.train.batch_size, mean=cfg.data.mean, std=cfg.data.std, augment=cfg.data.augment,
            shuffle=True, drop_last=len(y) > cfg.train.batch_size, generator=self.generator,
            channels_last=cfg.train.channels_last)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = self.steps_per_epoch * cfg.train.epochs

    def _eval_loader(self, split: tuple[torch.Tensor, torch.Tensor]) -> DeviceLoader:
        return DeviceLoader(*split, self.cfg.train.eval_batch_size, mean=self.cfg.data.mean, std=self.cfg.data.std,
                            channels_last=self.cfg.train.channels_last)

    def _restore(self) -> int:
        """Load the checkpoint; returns the number of completed epochs."""
        if not self.ckpt_path.is_file():  # killed before its first epoch ended: start over in the same directory
            self.files.truncate_metrics(0)
            return 0
        groups, meta = ckpt.load_checkpoint(self.ckpt_path)
        self.model.load_state_dict(groups["model"])
        ckpt.optimizer_from_tensors(self.optimizer, groups.get("optim", {}), meta["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(groups["ema"])
        torch.set_rng_state(groups["rng"]["torch"])
        self.generator.set_state(groups["rng"]["data"].to(self.generator.get_state().device))
        if self.device.type == "cuda" and "cuda" in groups["rng"]:
            torch.cuda.set_rng_state(groups["rng"]["cuda"], self.device)
        self.state.update(meta["state"])
        self.files.truncate_metrics(meta["state"]["epochs_completed"])
        return meta["state"]["epochs_completed"]

    def _save_checkpoint(self) -> None:
        rng = {"torch": torch.get_rng_state(), "data": self.generator.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        optim_tensors, optim_meta = ckpt.optimizer_to_tensors(self.optimizer)
        groups = {"model": self.model.state_dict(), "optim": optim_tensors, "rng": rng}
        if self.ema is not None:
            groups["ema"] = self.ema.state_dict()
        ckpt.save_checkpoint(self.ckpt_path, groups, {
            "config": self.cfg.to_dict(), "classes": self.splits.classes,
            "optimizer": optim_meta, "state": self.state})

    # ------------------------------------------------------------------ loop

    def run(self) -> TrainResult:
        """Train every remaining epoch, then finish the run directory."""
        cfg, files = self.cfg, self.files
        self._build()
        self.state: dict[str, Any] = {"epochs_completed": 0, "step": 0, "train_seconds": 0.0, "eval_seconds": 0.0,
                                      "best_val_acc": None, "best_epoch": None, "first_epoch_seconds": None}
        start_epoch = self._restore() if self.resuming else 0
        if not self.resuming or start_epoch == 0:
            files.write_config(cfg)
            files.write_env(environment(self.device))
        self.started = time.perf_counter()
        # Wall time of the sessions before a resume; counted once, at the start of this one.
        self.wall_before = files.summary().get("wall_seconds", 0.0) if start_epoch else 0.0
        self._write_summary("running")
        self._say(f"run {files.path}  model {self._model_name()} ({self.params:,} params)  "
                  f"data {self.splits.source}: {len(self.splits.train[1]):,} train / "
                  f"{0 if self.splits.val is None else len(self.splits.val[1]):,} val / "
                  f"{len(self.splits.test[1]):,} test  device {self.device} ({self._precision()})"
                  + (f"  resuming after epoch {start_epoch}" if start_epoch else ""))
        self._say(_HEADER)
        try:
            for epoch in range(start_epoch + 1, cfg.train.epochs + 1):
                record = self._train_epoch(epoch)
                self._save_checkpoint()
                self._write_summary("running")
                for callback in self.callbacks:
                    callback(dict(record))
        except TrainingDiverged:
            self._write_summary("diverged")
            raise
        except KeyboardInterrupt:
            self._write_summary("interrupted")
            self._say(f"interrupted: resume with `cifarlab train --resume {files.path}`")
            raise
        except BaseException:
            self._write_summary("stopped")
            raise
        return self._finish()

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg = self.cfg
        model, optimizer, loader = self.model, self.optimizer, self.train_loader
        model.train()
        losses, correct = [], torch.zeros((), device=self.device, dtype=torch.long)
        bar = tqdm(total=len(loader), desc=f"epoch {epoch}/{cfg.train.epochs}", unit="batch", leave=False,
                   disable=not self.progress, dynamic_ncols=True)
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(loader):
            step = self.state["step"]
            multiplier = lr_multiplier(step, self.total_steps, self.steps_per_epoch, cfg.schedule)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * multiplier
            with torch.autocast(self.device.type, dtype=self.autocast or torch.float32,
                                enabled=self.autocast is not None):
                logits = self.forward(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.train.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.train.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
            if self.ema is not None:
                self.ema.update(model)
            losses.append(loss.detach())
            correct += (logits.argmax(1) == y).sum()
            self.state["step"] = step + 1
            if (i + 1) % _SYNC_EVERY == 0 or i + 1 == len(loader):
                recent = torch.stack(losses[-_SYNC_EVERY:]).float()
                self._check_finite(recent, epoch, i + 1)
                elapsed = time.perf_counter() - t0
                bar.set_postfix(loss=f"{recent.mean().item():.4f}",
                                img_s=f"{(i + 1) * loader.batch_size / elapsed:.0f}", refresh=False)
                bar.update((i + 1) - bar.n)
        bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        self.state["train_seconds"] += seconds
        if self.state["first_epoch_seconds"] is None:
            self.state["first_epoch_seconds"] = seconds
        step_losses = torch.stack(losses).float().cpu().tolist()
        # The first group's rate: the filters' under Muon, every parameter's otherwise.
        lr = optimizer.param_groups[0]["lr"]
        return self._end_epoch(epoch, step_losses, int(correct) / loader.num_images, seconds, lr)

    def _check_finite(self, recent: torch.Tensor, epoch: int, batch: int) -> None:
        if not torch.isfinite(recent).all():
            good = self.state["epochs_completed"]
            kept = f"the last good checkpoint (epoch {good}) is kept in {self.ckpt_path}" if good else \
                "no epoch finished, so there is no checkpoint"
            raise TrainingDiverged(
                f"loss became {recent[~torch.isfinite(recent)][0].item()} at epoch {epoch}, batch {batch}; {kept}. "
                f"Try a lower optim.lr (now {self.cfg.optim.lr:g}) or train.grad_clip")

    def _end_epoch(self, epoch: int, step_losses: list[float], train_acc: float, seconds: float,
                   lr: float) -> dict[str, Any]:
        cfg = self.cfg
        first_step = self.state["step"] - len(step_losses)
        records: list[dict[str, Any]] = [
            {"type": "step", "epoch": epoch, "step": first_step + i + 1, "loss": v} for i, v in enumerate(step_losses)]
        every = cfg.train.log_every
        records += [{"type": "running_loss", "epoch": epoch, "batch": end,
                     "loss": sum(step_losses[end - every:end]) / every}
                    for end in range(every, len(step_losses) + 1, every)]
        val = self._evaluate(self.splits.val, "val") if self.splits.val is not None else None
        test_acc = test_seconds = None
        if cfg.train.test_every_epoch:  # timed apart: a benchmark subtracts what a plain run would not spend
            t0 = time.perf_counter()
            test_acc = self._evaluate(self.splits.test, "test").accuracy
            test_seconds = time.perf_counter() - t0
        record = {
            "type": "epoch", "epoch": epoch,
            "train_loss": sum(step_losses) / len(step_losses), "train_acc": train_acc,
            "val_loss": val.loss if val else None, "val_acc": val.accuracy if val else None,
            "test_acc": test_acc, "test_seconds": test_seconds,
            "lr": lr, "seconds": seconds, "images_per_s": self.train_loader.num_images / seconds,
        }
        records.append(record)
        self.files.append_metrics(records)
        self.state["epochs_completed"] = epoch
        if val is not None and (self.state["best_val_acc"] is None or val.accuracy > self.state["best_val_acc"]):
            self.state["best_val_acc"], self.state["best_epoch"] = val.accuracy, epoch
        self._say(_row(record))
        return record

    def _evaluate(self, split: tuple[torch.Tensor, torch.Tensor], name: str) -> EvalReport:
        t0 = time.perf_counter()
        report = evaluate_loader(self._eval_model(), self._eval_loader(split), self.splits.classes, name,
                                 tta_flip=self.cfg.train.tta_flip, tta_translate=self.cfg.train.tta_translate,
                                 autocast_dtype=self.autocast)
        self.state["eval_seconds"] += time.perf_counter() - t0
        return report

    def _eval_model(self) -> nn.Module:
        """The weights that are evaluated and saved: the EMA average when enabled."""
        if self.ema is None:
            return self.model
        model = build_model(self.cfg.model).to(self.device)
        model.load_state_dict(self.ema.state_dict())
        return model

    # ------------------------------------------------------------------ finish

    def _finish(self) -> TrainResult:
        files = self.files
        test = self._evaluate(self.splits.test, "test")
        files.write_predictions(torch.from_numpy(self.splits.test_index), self.splits.test[1], test.probs)
        ckpt.save_weights(files.path / RunDir.WEIGHTS, self._eval_model(), self.cfg, self.splits.classes,
                          test_acc=test.accuracy)
        summary = self._write_summary("completed", test=test)
        from cifarlab.reporting.plots import write_run_plots

        write_run_plots(files.path, files.metrics(), test)
        val_acc = summary["val_acc"]
        self._say(f"test accuracy {test.accuracy:.2%}"
                  + (f"  (val {val_acc:.2%}, best val {self.state['best_val_acc']:.2%} at epoch "
                     f"{self.state['best_epoch']})" if val_acc is not None else "")
                  + f"  train {self.state['train_seconds']:.1f}s  wall {summary['wall_seconds']:.1f}s  -> {files.path}")
        return TrainResult(run_dir=files.path, summary=summary, config=self.cfg)

    def _write_summary(self, status: str, test: EvalReport | None = None) -> dict[str, Any]:
        state, cfg = self.state, self.cfg
        epoch_records = self.files.epochs()
        last = epoch_records[-1] if epoch_records else {}
        images = self.train_loader.num_images * state["epochs_completed"]
        summary = {
            "status": status,
            "preset": cfg.preset,
            "model": self._model_name(),
            "params": self.params,
            "arch": self.arch,
            "epochs": cfg.train.epochs,
            "epochs_completed": state["epochs_completed"],
            "train_loss": last.get("train_loss"),
            "train_acc": last.get("train_acc"),
            "val_acc": last.get("val_acc"),
            "best_val_acc": state["best_val_acc"],
            "best_epoch": state["best_epoch"],
            "test_acc": test.accuracy if test else None,
            "train_seconds": state["train_seconds"],
            "first_epoch_seconds": state["first_epoch_seconds"],
            "eval_seconds": state["eval_seconds"],
            "data_seconds": self.data_seconds,
            "wall_seconds": self.wall_before + (time.perf_counter() - self.started),
            "images_per_s": images / state["train_seconds"] if state["train_seconds"] else None,
            "train_images": len(self.splits.train[1]),
            "test_images": len(self.splits.test[1]),
            "device": str(self.device),
            "precision": self._precision(),
            "seed": cfg.train.seed,
            "data": self.splits.source,
            "updated_at": timestamp(),
        }
        self.files.write_summary(summary)
        return summary

    def _precision(self) -> str:
        return "bf16" if self.autocast is not None else "fp32"

    def _model_name(self) -> str:
        return "custom" if self.cfg.model.layers is not None else self.cfg.model.name

    def _say(self, line: str) -> None:
        if self.verbose:
            tqdm.write(line)


_HEADER = f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'val_loss':>8} {'val_acc':>7} {'lr':>8} " \
          f"{'seconds':>8} {'img/s':>7}"


def _row(r: dict[str, Any]) -> str:
    def pct(v):
        return f"{v:.2%}" if v is not None and not math.isnan(v) else "-"

    val_loss = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else "-"
    return (f"{r['epoch']:>5} {r['train_loss']:>10.4f} {pct(r['train_acc']):>9} {val_loss:>8} "
            f"{pct(r['val_acc']):>7} {r['lr']:>8.2e} {r['seconds']:>8.1f} {r['images_per_s']:>7.0f}")
