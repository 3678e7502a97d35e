"""The run directory: resolved config, environment, metrics log and summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cifarlab.fileio import write_json, write_text

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


def timestamp() -> str:
    """Local time as ``YYYY-mm-ddTHH:MM:SS``."""
    return dt.datetime.now().isoformat(timespec="seconds")


def new_run_dir(out_dir: str | Path | None, preset: str) -> Path:
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
    return path


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, machine and device facts worth keeping beside a result."""
    from cifarlab import __version__

    info: dict[str, Any] = {
        "cifarlab": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "command": sys.argv,
        "started_at": timestamp(),
    }
    if device.type == "cuda":
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


class RunFiles:
    """Writes a run directory's files; every write but the metrics log's appends is atomic."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir

    def write_config(self, yaml_text: str) -> None:
        """Save the resolved config."""
        write_text(self.dir / CONFIG_FILE, yaml_text)

    def write_env(self, info: dict[str, Any]) -> None:
        """Save the environment facts."""
        write_json(self.dir / ENV_FILE, info)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Save the summary (rewritten after every epoch)."""
        write_json(self.dir / SUMMARY_FILE, summary)

    def read_summary(self) -> dict[str, Any]:
        """The summary written so far."""
        return json.loads((self.dir / SUMMARY_FILE).read_text())

    def append_metrics(self, records: list[dict[str, Any]]) -> None:
        """Append records to ``metrics.jsonl``, one JSON object per line."""
        with open(self.dir / METRICS_FILE, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)

    def read_metrics(self) -> list[dict[str, Any]]:
        """All records of ``metrics.jsonl``; a torn last line from a kill is skipped."""
        path = self.dir / METRICS_FILE
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep only records up to ``last_epoch``: a resumed run re-logs what came after."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= last_epoch]
        write_text(self.dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept))
