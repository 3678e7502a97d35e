"""A run directory: every file a run leaves behind, named, written and read in one place.

Training writes it; evaluate, predict, export, inspect, the runs table, sweeps
and reports read it through :class:`RunDir` and never spell a file name.
Torch is imported only by the methods that need it, so listing runs stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cifarlab.fileio import append_text, write_bytes, write_json, write_text

if TYPE_CHECKING:
    import torch

    from cifarlab.config import Config


class RunDir:
    """Reader and writer of one run directory; every write but the metrics log's appends is atomic."""

    CONFIG = "config.yaml"  # the resolved config
    ENV = "env.json"  # versions, machine, command
    METRICS = "metrics.jsonl"  # one JSON record per line: step, running_loss and epoch records
    SUMMARY = "summary.json"  # status and headline numbers, rewritten after every epoch
    WEIGHTS = "weights.safetensors"  # the final (EMA) weights with the config in their metadata
    CHECKPOINT = "checkpoint.safetensors"  # everything --resume needs
    PLOTS = "plots"
    PREDICTIONS = "predictions.safetensors"  # the final test pass: index, label, probs
    REPORT = "report.html"
    SWEEP = "sweep.json"  # a sweep trial's label, configuration group, own settings and write-up accuracy
    ROBUSTNESS = "robustness.json"  # accuracy per corruption and severity, from `evaluate --corruptions`

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether this is a run directory (it has a config.yaml)."""
        return (self.path / self.CONFIG).is_file()

    # ------------------------------------------------------------------ read

    def config(self) -> Config:
        """The resolved config the run trained with; ConfigError naming the file if it does not parse."""
        from cifarlab.config import from_dict, read_config_file

        file = self.path / self.CONFIG
        return from_dict(read_config_file(file), where=str(file))

    def env(self) -> dict[str, Any]:
        """The environment record, or ``{}`` when missing or unreadable."""
        return self._json(self.ENV)

    def summary(self) -> dict[str, Any]:
        """The summary written so far, or ``{}`` when missing or unreadable."""
        return self._json(self.SUMMARY)

    def sweep(self) -> dict[str, Any]:
        """A sweep trial's record, or ``{}`` for a run outside a sweep."""
        return self._json(self.SWEEP)

    def robustness(self) -> dict[str, Any]:
        """``{"corruptions": {name: {severity: acc}}, "mean": acc, "clean": acc}``, or ``{}`` if never measured."""
        return self._json(self.ROBUSTNESS)

    def _json(self, name: str) -> dict[str, Any]:
        try:
            value = json.loads((self.path / name).read_text())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def metrics(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl``; a corrupted line (torn by a kill) is skipped with a warning."""
        file = self.path / self.METRICS
        try:
            lines = file.read_text().splitlines()
        except OSError:
            return []
        records = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                warnings.warn(f"{file}:{number}: not a JSON record, skipped", stacklevel=2)
        return records

    def epochs(self) -> list[dict[str, Any]]:
        """The per-epoch records, in order."""
        return [r for r in self.metrics() if r.get("type") == "epoch"]

    def steps(self) -> list[dict[str, Any]]:
        """The per-step loss records, in order."""
        return [r for r in self.metrics() if r.get("type") == "step"]

    def predictions(self) -> dict[str, torch.Tensor] | None:
        """The final test pass: ``index`` (test-set positions), ``label``, ``probs`` (N x classes); None if absent."""
        from safetensors.torch import load_file

        file = self.path / self.PREDICTIONS
        return load_file(str(file)) if file.is_file() else None

    # ------------------------------------------------------------------ write

    def write_config(self, cfg: Config) -> None:
        """Save the resolved config."""
        write_text(self.path / self.CONFIG, cfg.to_yaml())

    def write_env(self, info: dict[str, Any]) -> None:
        """Save the environment facts."""
        write_json(self.path / self.ENV, info)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Save the summary."""
        write_json(self.path / self.SUMMARY, summary)

    def write_sweep(self, record: dict[str, Any]) -> None:
        """Save a sweep trial's record."""
        write_json(self.path / self.SWEEP, record)

    def write_robustness(self, result: dict[str, Any]) -> None:
        """Save the corruption accuracies (see :meth:`robustness`)."""
        write_json(self.path / self.ROBUSTNESS, result)

    def append_metrics(self, records: list[dict[str, Any]]) -> None:
        """Append records to ``metrics.jsonl``, one JSON object per line; all of them or, on a disk fault, none."""
        append_text(self.path / self.METRICS, "".join(json.dumps(r) + "\n" for r in records))

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep only records up to ``last_epoch``: a resumed run re-logs what came after."""
        with warnings.catch_warnings():  # the line a kill tore is expected here, and dropped
            warnings.simplefilter("ignore")
            kept = [r for r in self.metrics() if r.get("epoch", 0) <= last_epoch]
        write_text(self.path / self.METRICS, "".join(json.dumps(r) + "\n" for r in kept))

    def write_predictions(self, index: torch.Tensor, label: torch.Tensor, probs: torch.Tensor) -> None:
        """Save per-image test predictions (int64 index and label, float32 probabilities)."""
        import torch
        from safetensors.torch import save

        tensors = {"index": index.to("cpu", torch.int64).contiguous(),
                   "label": label.to("cpu", torch.int64).contiguous(),
                   "probs": probs.to("cpu", torch.float32).contiguous()}
        write_bytes(self.path / self.PREDICTIONS, save(tensors))


def timestamp() -> str:
    """Local time as ``YYYY-mm-ddTHH:MM:SS``."""
    return dt.datetime.now().isoformat(timespec="seconds")


def new_run_dir(out_dir: str | Path | None, preset: str) -> RunDir:
    """Create the run directory: ``out_dir`` if given, else ``runs/<preset>-<time>`` (made unique)."""
    if out_dir is not None:
        path = Path(out_dir)
    else:
        path = Path("runs") / f"{preset}-{dt.datetime.now():%Y%m%d-%H%M%S}"
        base, n = path, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True, exist_ok=True)
    return RunDir(path)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, machine (:func:`cifarlab.devices.machine_facts`) and device facts worth keeping beside a result."""
    import numpy as np
    import torch

    from cifarlab import __version__
    from cifarlab.devices import machine_facts

    info: dict[str, Any] = {"cifarlab": __version__, "git_commit": _git_commit(), **machine_facts(),
                            "numpy": np.__version__, "platform": platform.platform(), "device": str(device),
                            "command": sys.argv, "started_at": timestamp()}
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
