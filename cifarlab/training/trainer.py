"""The training loop: ``train(config) -> TrainResult``.

Read top to bottom: resolve the config and run directory, put the data on the
device, :func:`setup` model, optimizer and loader, (restore a checkpoint), then
:func:`_loop` over the epochs: train, validate, log one line, checkpoint. At the
end, :func:`_finish`: test accuracy, predictions, final weights, plots. Losses
stay on the device between log points so a GPU step never waits for the host.
"""

from __future__ import annotations

import contextlib
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
from cifarlab.data.split import Split, Splits, prepare_splits
from cifarlab.devices import autocast, resolve_device, synchronize
from cifarlab.errors import CifarlabError, ConfigError, DiskError
from cifarlab.evaluation.inference import evaluate_split
from cifarlab.evaluation.metrics import EvalReport
from cifarlab.formatting import duration, percent
from cifarlab.models.weights import save_weights
from cifarlab.preemption import Interrupted, StopRequest, deferred_signals
from cifarlab.rundir import RunDir, environment, new_run_dir, timestamp
from cifarlab.terminal import interactive
from cifarlab.training.checkpoint import TrainState, restore_checkpoint, save_checkpoint
from cifarlab.training.eta import EtaClock
from cifarlab.training.setup import Setup, setup
from cifarlab.training.tensorboard import TensorBoardLog, require_tensorboard

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
        if cfg.train.tensorboard:
            require_tensorboard()  # before a run directory exists or data is loaded
        run_dir = new_run_dir(out_dir, cfg.preset)
    progress = interactive(progress)  # piped or redirected output gets one line per epoch, no bars
    device = resolve_device(cfg.train.device)
    t0 = time.perf_counter()
    if data is None:
        from cifarlab.data import load_dataset

        data = load_dataset(cfg.data.path, progress=progress)
    splits = prepare_splits(cfg, data, device)
    data_seconds = time.perf_counter() - t0
    run = setup(cfg, splits, device)
    checkpoint = run_dir.path / RunDir.CHECKPOINT
    # A run killed before its first epoch ended has no checkpoint: it starts over in the same directory.
    state = restore_checkpoint(checkpoint, run) if resume is not None and checkpoint.is_file() else TrainState()
    if resume is not None:
        run_dir.truncate_metrics(state.epochs_completed)  # what came after the checkpoint is logged again
    if state.epochs_completed == 0:
        run_dir.write_config(cfg)
        run_dir.write_env(environment(device))
    log = _Log(cfg, run_dir, run, splits, state, data_seconds, verbose)
    try:
        with deferred_signals() as stop:  # SIGTERM and Ctrl-C wait for the end of the step
            _loop(cfg, run, splits, state, log, callbacks, progress, stop)
        return _finish(cfg, run, splits, state, log)
    except TrainingDiverged:
        log.summary("diverged")
        raise
    except KeyboardInterrupt:
        log.summary("interrupted")
        log.say(f"interrupted: resume with `cifarlab train --resume {run_dir.path}`")
        raise
    except DiskError as exc:
        with contextlib.suppress(DiskError):  # the disk may still take this small file
            log.summary("failed", error=str(exc))
        kept = "the last good checkpoint is kept; " if checkpoint.is_file() else ""
        exc.hint = f"{kept}free space, then `cifarlab train --resume {run_dir.path}`"
        raise
    except BaseException:
        log.summary("stopped")
        raise


def _loop(cfg: Config, run: Setup, splits: Splits, state: TrainState, log: _Log,
          callbacks: Sequence[EpochCallback], progress: bool, stop: StopRequest) -> None:
    """Train the epochs after ``state.epochs_completed``; after each: validate, log, checkpoint, call back."""
    first_epoch = state.epochs_completed + 1
    sides = [_side(cfg, epoch) for epoch in range(first_epoch, cfg.train.epochs + 1)] if cfg.train.resolution else []
    clock = EtaClock(cfg.train.epochs - state.epochs_completed, run.loader.num_images, preset=cfg.preset,
                     on_cpu=run.device.type == "cpu", sides=sides)
    for epoch in range(first_epoch, cfg.train.epochs + 1):
        epoch_started = time.perf_counter()
        losses, correct, seconds = _train_epoch(cfg, run, splits, state, log, epoch, clock, progress, stop,
                                                compiling=cfg.train.compile and epoch == first_epoch)
        state.train_seconds += seconds
        if state.first_epoch_seconds is None:
            state.first_epoch_seconds = seconds
        validate = splits.val is not None and cfg.train.validates(epoch)
        val = _evaluate(cfg, run, splits.val, state, views=cfg.train.val_tta) if validate else None
        test_acc = test_seconds = None
        if cfg.train.test_every_epoch:  # timed apart: a benchmark subtracts what a plain run would not spend
            t0 = time.perf_counter()
            test_acc = _evaluate(cfg, run, splits.test, state).accuracy
            test_seconds = time.perf_counter() - t0
        # The first group's rate: the filters' under Muon, every parameter's otherwise.
        record = log.epoch(epoch, losses, correct / run.loader.num_images, seconds,
                           run.optimizer.param_groups[0]["lr"], val, test_acc, test_seconds)
        state.epochs_completed = epoch
        log.say(clock.epoch(epoch - first_epoch + 1, time.perf_counter() - epoch_started))
        if val is not None and (state.best_val_acc is None or val.accuracy > state.best_val_acc):
            state.best_val_acc, state.best_epoch = val.accuracy, epoch
        save_checkpoint(log.run_dir.path / RunDir.CHECKPOINT, run, state, cfg, splits.classes)
        log.summary("running")
        for callback in callbacks:
            callback(dict(record))


def _train_epoch(cfg: Config, run: Setup, splits: Splits, state: TrainState, log: _Log, epoch: int,
                 clock: EtaClock, progress: bool, stop: StopRequest, compiling: bool
                 ) -> tuple[list[torch.Tensor], int, float]:
    """One epoch's optimizer steps: (per-step losses, correct predictions, training seconds).

    ``compiling``: the session's first step compiles the model; its time goes to ``state.compile_seconds``.
    A stop request checkpoints the step just taken and raises :class:`Interrupted`.
    """
    loader, optimizer = run.loader, run.optimizer
    loader.size = _side(cfg, epoch)
    loader.epoch = epoch
    run.model.train()
    start_epoch = getattr(run.model, "start_epoch", None)
    if start_epoch is not None:  # e.g. the fast net stops training its whitening bias
        start_epoch(epoch)
    # Resumed mid-epoch: the loader replays the epoch's draws from its start, skipping the steps taken.
    epoch_rng, skip, warmup = run.generator.get_state(), state.epoch_steps, 0.0
    losses = [torch.tensor(v, device=run.device) for v in state.epoch_losses]
    correct = torch.tensor(state.epoch_correct, device=run.device)
    bar = tqdm(total=len(loader), desc=f"epoch {epoch}/{cfg.train.epochs}", unit="batch", leave=False,
               disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i < skip:
            continue
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * run.schedule(state.step)
        with autocast(run.device, run.precision):
            logits = run.forward(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.train.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        if run.ema is not None:
            run.ema.update(run.model)
        losses.append(loss.detach())
        correct += (logits.argmax(1) == y).sum()
        state.step += 1
        ran = i + 1 - skip  # the batches timed since t0: a resumed epoch's skipped ones were run before it
        if compiling:
            synchronize(run.device)
            warmup, compiling = time.perf_counter() - t0, False
        if not clock.estimated:  # the first batches of a session: measure for the expected time
            synchronize(run.device)
            log.say(clock.batch(ran, ran * loader.batch_size, time.perf_counter() - t0))
        if (i + 1) % _SYNC_EVERY == 0 or i + 1 == len(loader):
            recent = torch.stack(losses[-_SYNC_EVERY:]).float()
            log.check_finite(recent, epoch, i + 1)
            bar.set_postfix(loss=f"{recent.mean().item():.4f}", refresh=False,
                            img_s=f"{ran * loader.batch_size / (time.perf_counter() - t0):.0f}")
            bar.update((i + 1) - bar.n)
        if stop:  # checkpoint this step's state; the resumed run goes on from the next step
            state.epoch_steps, state.epoch_losses = i + 1, torch.stack(losses).float().cpu().tolist()
            state.epoch_correct = int(correct)
            state.epoch_seconds += time.perf_counter() - t0 - warmup
            state.compile_seconds += warmup
            run.generator.set_state(epoch_rng)
            save_checkpoint(log.run_dir.path / RunDir.CHECKPOINT, run, state, cfg, splits.classes)
            raise Interrupted(stop.signum, f"stopped by {stop.name} at epoch {epoch}, step {i + 1} of "
                                           f"{len(loader)}; checkpoint saved in {log.run_dir.path}")
    bar.close()
    synchronize(run.device)
    seconds = time.perf_counter() - t0 - warmup + state.epoch_seconds
    state.epoch_steps, state.epoch_losses, state.epoch_correct, state.epoch_seconds = 0, [], 0, 0.0
    state.compile_seconds += warmup
    return losses, int(correct), seconds


def _side(cfg: Config, epoch: int) -> int | None:
    """The side of ``epoch``'s training images under ``train.resolution`` (the last repeating); None: as stored."""
    sides = cfg.train.resolution
    return sides[min(epoch, len(sides)) - 1] if sides else None


def _finish(cfg: Config, run: Setup, splits: Splits, state: TrainState, log: _Log) -> TrainResult:
    """The end of a completed run: test pass, predictions, final weights, summary, plots, report, closing line."""
    from cifarlab.reporting.html import write_report_safely
    from cifarlab.reporting.plots import write_run_plots

    run_dir = log.run_dir
    test = _evaluate(cfg, run, splits.test, state)
    run_dir.write_predictions(torch.from_numpy(splits.test.index), splits.test.labels, test.probs)
    save_weights(run_dir.path / RunDir.WEIGHTS, run.eval_model, cfg, splits.classes, test_acc=test.accuracy)
    summary = log.summary("completed", test)
    if log.tensorboard is not None:
        log.tensorboard.finish(cfg.to_dict(), summary)
    write_run_plots(run_dir.path, run_dir.metrics(), test)
    write_report_safely(run_dir.path)
    val_acc = summary["val_acc"]
    log.say(f"test accuracy {test.accuracy:.2%}"
            + (f"  (val {val_acc:.2%}, best val {state.best_val_acc:.2%} at epoch {state.best_epoch})"
               if val_acc is not None else "")
            + f"  train {duration(state.train_seconds)}  wall {duration(summary['wall_seconds'])}  -> {run_dir.path}")
    return TrainResult(run_dir=run_dir.path, summary=summary, config=cfg)


def _evaluate(cfg: Config, run: Setup, split: Split, state: TrainState, views: bool = True) -> EvalReport:
    t0 = time.perf_counter()
    report = evaluate_split(run.eval_model, cfg, split, run.device, views)
    state.eval_seconds += time.perf_counter() - t0
    return report


class _Log:
    """A run's account of itself: ``metrics.jsonl``, ``summary.json`` and the printed lines."""

    def __init__(self, cfg: Config, run_dir: RunDir, run: Setup, splits: Splits, state: TrainState,
                 data_seconds: float, verbose: bool):
        self.cfg, self.run_dir, self.run, self.splits, self.state = cfg, run_dir, run, splits, state
        self.data_seconds, self.verbose = data_seconds, verbose
        self.started = time.perf_counter()
        resumed = state.epochs_completed
        # Wall time of the sessions before a resume; counted once, at the start of this one.
        self.wall_before = run_dir.summary().get("wall_seconds", 0.0) if resumed else 0.0
        self.last = (run_dir.epochs() or [{}])[-1] if resumed else {}
        self.tensorboard = TensorBoardLog(run_dir.path, resume_step=state.step) if cfg.train.tensorboard else None
        self.summary("running")
        val = 0 if splits.val is None else len(splits.val)
        self.say(f"run {run_dir.path}  model {self._model_name()} ({run.arch['params']:,} params)  "
                 f"data {splits.source}: {len(splits.train):,} train / {val:,} val / {len(splits.test):,} test  "
                 f"device {run.device} ({self._precision()})"
                 + (f"  resuming after epoch {resumed}" if resumed else ""))
        self.say(_HEADER)

    def say(self, line: str | None) -> None:
        """Print ``line`` (above the progress bar) unless the run is quiet or there is no line."""
        if self.verbose and line is not None:
            tqdm.write(line)

    def check_finite(self, recent: torch.Tensor, epoch: int, batch: int) -> None:
        """Raise :class:`TrainingDiverged` if any of the recent losses is NaN or infinite."""
        if not torch.isfinite(recent).all():
            good, path = self.state.epochs_completed, self.run_dir.path / RunDir.CHECKPOINT
            kept = f"the last good checkpoint (epoch {good}) is kept in {path}" if good else \
                "no epoch finished, so there is no checkpoint"
            raise TrainingDiverged(
                f"loss became {recent[~torch.isfinite(recent)][0].item()} at epoch {epoch}, batch {batch}; {kept}. "
                f"Try a lower optim.lr (now {self.cfg.optim.lr:g}) or train.grad_clip")

    def epoch(self, epoch: int, losses: list[torch.Tensor], train_acc: float, seconds: float, lr: float,
              val: EvalReport | None, test_acc: float | None, test_seconds: float | None) -> dict[str, Any]:
        """Append the epoch's step, running-loss and epoch records, print its line; the epoch record."""
        step_losses = torch.stack(losses).float().cpu().tolist()
        first_step = self.state.step - len(step_losses)
        records: list[dict[str, Any]] = [
            {"type": "step", "epoch": epoch, "step": first_step + i + 1, "loss": v} for i, v in enumerate(step_losses)]
        every = self.cfg.train.log_every
        records += [{"type": "running_loss", "epoch": epoch, "batch": end,
                     "loss": sum(step_losses[end - every:end]) / every}
                    for end in range(every, len(step_losses) + 1, every)]
        self.last = {
            "type": "epoch", "epoch": epoch,
            "train_loss": sum(step_losses) / len(step_losses), "train_acc": train_acc,
            "val_loss": val.loss if val else None, "val_acc": val.accuracy if val else None,
            "test_acc": test_acc, "test_seconds": test_seconds,
            "lr": lr, "seconds": seconds, "images_per_s": self.run.loader.num_images / seconds,
        }
        self.run_dir.append_metrics(records + [self.last])
        if self.tensorboard is not None:
            base_lr = self.run.optimizer.param_groups[0]["initial_lr"]  # the rate each step used, as the loop set it
            self.tensorboard.steps([{**r, "lr": base_lr * self.run.schedule(r["step"] - 1)}
                                    for r in records if r["type"] == "step"])
            self.tensorboard.epoch(self.last, self.state.step)
        self.say(_row(self.last))
        return self.last

    def summary(self, status: str, test: EvalReport | None = None, error: str | None = None) -> dict[str, Any]:
        """Write ``summary.json`` with ``status`` (and the ``error`` that stopped the run) and return it."""
        state, cfg, splits = self.state, self.cfg, self.splits
        images = self.run.loader.num_images * state.epochs_completed
        summary = {
            "status": status, "preset": cfg.preset, "model": self._model_name(), "params": self.run.arch["params"],
            "arch": self.run.arch, "epochs": cfg.train.epochs, "epochs_completed": state.epochs_completed,
            "train_loss": self.last.get("train_loss"), "train_acc": self.last.get("train_acc"),
            "val_acc": self.last.get("val_acc"), "best_val_acc": state.best_val_acc, "best_epoch": state.best_epoch,
            "test_acc": test.accuracy if test else None,
            "train_seconds": state.train_seconds, "compile_seconds": state.compile_seconds,
            "first_epoch_seconds": state.first_epoch_seconds, "eval_seconds": state.eval_seconds,
            "data_seconds": self.data_seconds, "wall_seconds": self.wall_before + (time.perf_counter() - self.started),
            "images_per_s": images / state.train_seconds if state.train_seconds else None,
            "train_images": len(splits.train), "test_images": len(splits.test), "device": str(self.run.device),
            "precision": self._precision(), "seed": cfg.train.seed, "data": splits.source, "updated_at": timestamp(),
        }
        if error is not None:
            summary["error"] = error
        self.run_dir.write_summary(summary)
        return summary

    def _precision(self) -> str:
        return "bf16" if self.run.precision is not None else "fp32"

    def _model_name(self) -> str:
        return "custom" if self.cfg.model.layers is not None else self.cfg.model.name


_HEADER = f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'val_loss':>8} {'val_acc':>7} {'lr':>8} " \
          f"{'seconds':>8} {'img/s':>7}"


def _row(r: dict[str, Any]) -> str:
    val_loss = f"{r['val_loss']:.4f}" if r["val_loss"] is not None else "-"
    return (f"{r['epoch']:>5} {r['train_loss']:>10.4f} {percent(r['train_acc']):>9} {val_loss:>8} "
            f"{percent(r['val_acc']):>7} {r['lr']:>8.2e} {r['seconds']:>8.1f} {r['images_per_s']:>7.0f}")
