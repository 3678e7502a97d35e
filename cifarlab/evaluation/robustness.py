"""Accuracy on CIFAR-10-C-style corrupted test images: ``cifarlab evaluate RUN --corruptions``.

Each corruption of :mod:`cifarlab.evaluation.corruptions` is applied at each
severity to the run's test images (the same ones plain ``evaluate`` uses, or a
stratified subset of them), and the model classifies them exactly as it does
the clean ones: the run's normalisation, precision and test-time views.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from cifarlab.data.loader import to_device_images
from cifarlab.errors import ConfigError
from cifarlab.evaluation.calibration import expected_calibration_error
from cifarlab.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from cifarlab.evaluation.evaluate import load_run_splits
from cifarlab.evaluation.inference import split_logits
from cifarlab.formatting import duration, percent, text_table
from cifarlab.rundir import RunDir
from cifarlab.terminal import interactive


@dataclass
class RobustnessReport:
    """Accuracy (and ECE) per corruption and severity, their means, and the clean figures."""

    corruptions: dict[str, dict[str, float]]  # name -> {"1": accuracy, ..., "5": accuracy}
    ece: dict[str, dict[str, float]]  # the same layout, expected calibration error (15 bins)
    clean: float
    clean_ece: float
    num_images: int
    seed: int
    seconds: float
    mean: float = field(init=False)
    mean_ece: float = field(init=False)

    def __post_init__(self) -> None:
        self.mean = _mean(self.corruptions)
        self.mean_ece = _mean(self.ece)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as saved in the run's ``robustness.json``."""
        return {"corruptions": self.corruptions, "mean": self.mean, "clean": self.clean,
                "ece": self.ece, "mean_ece": self.mean_ece, "clean_ece": self.clean_ece,
                "num_images": self.num_images, "seed": self.seed, "seconds": self.seconds}

    def format_table(self) -> str:
        """Corruption x severity accuracies, then the mean, clean accuracy and ECE."""
        severities = list(next(iter(self.corruptions.values())))
        rows = [[name, *map(percent, by_severity.values()), percent(sum(by_severity.values()) / len(by_severity))]
                for name, by_severity in self.corruptions.items()]
        lines = [f"accuracy under corruption ({self.num_images:,} test images, corruption seed {self.seed})", "",
                 *text_table(["corruption", *(f"sev {s}" for s in severities), "mean"], rows,
                             right=range(1, len(severities) + 2))]
        lines += ["", f"mean corruption accuracy {percent(self.mean)}   clean accuracy {percent(self.clean)}",
                  f"ECE (15 bins): clean {percent(self.clean_ece)}, mean under corruption {percent(self.mean_ece)}",
                  f"took {duration(self.seconds)}"]
        return "\n".join(lines)


def _mean(table: dict[str, dict[str, float]]) -> float:
    values = [v for by_severity in table.values() for v in by_severity.values()]
    return sum(values) / len(values) if values else math.nan


def evaluate_corruptions(path: str | Path, *, data=None, device: str = "auto", names: Sequence[str] | None = None,
                         severities: Sequence[int] = SEVERITIES, max_images: int | None = None, seed: int = 0,
                         progress: bool = True, save: bool = True) -> RobustnessReport:
    """Accuracy of the model at ``path`` on its test images under each corruption and severity.

    ``path`` and ``data`` as for :func:`cifarlab.evaluate`; ``names`` picks corruptions (default: all);
    ``max_images`` a stratified subset of the test images (proportionally less time); ``seed`` the
    corruption noise. With ``save`` and a run directory, writes ``robustness.json`` and ``plots/robustness.png``.
    """
    names = list(names) if names is not None else list(CORRUPTIONS)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise ConfigError(f"unknown corruption {unknown[0]!r}; choose from {', '.join(CORRUPTIONS)}")
    if not severities or any(s not in SEVERITIES for s in severities):
        raise ConfigError(f"severities must be among 1..5, got {list(severities)}")
    if max_images is not None and max_images < 1:
        raise ConfigError(f"--max-test-images must be at least 1, got {max_images}")
    started = time.perf_counter()
    trained, dev, splits = load_run_splits(path, data, device, progress, max_test_images=max_images)
    test = splits.test
    labels = test.labels.cpu()
    clean_images = test.images.permute(0, 2, 3, 1).cpu().numpy()  # corruptions work on NHWC uint8

    def score(images: torch.Tensor) -> tuple[float, float]:
        probs = split_logits(trained.model, trained.config, images, dev).softmax(1).cpu()
        return float((probs.argmax(1) == labels).float().mean()), expected_calibration_error(probs, labels)

    clean, clean_ece = score(test.images)
    accuracy: dict[str, dict[str, float]] = {}
    ece: dict[str, dict[str, float]] = {}
    with tqdm(total=len(names) * len(severities), desc="corruptions", unit="set", disable=not interactive(progress),
              leave=False) as bar:
        for name in names:
            for severity in severities:
                bar.set_postfix_str(f"{name} {severity}")
                images = to_device_images(corrupt(clean_images, name, severity, seed=seed), dev)
                accuracy.setdefault(name, {})[str(severity)], ece.setdefault(name, {})[str(severity)] = score(images)
                bar.update()
    report = RobustnessReport(accuracy, ece, clean, clean_ece, len(labels), seed, time.perf_counter() - started)
    run = RunDir(path)
    if save and run.exists():
        from cifarlab.reporting.plots import plot_robustness

        run.write_robustness(report.to_dict())
        plot_robustness(report.to_dict(), run.path / RunDir.PLOTS / "robustness.png")
    return report

