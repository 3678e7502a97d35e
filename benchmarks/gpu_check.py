"""One-shot GPU check: the CUDA tests and the GPU presets' accuracy and time, within 8 minutes.

On a CUDA machine (an H100/H200-class GPU) it

1. runs the CUDA-marked tests (``pytest -m cuda``);
2. trains ``fast`` once to warm up, untimed: ``torch.compile`` and cuDNN's
   autotuning happen there, so the timed runs exclude compilation (as
   airbench times itself);
3. trains ``fast`` with 5 seeds: test accuracy mean, min and max, and time;
4. trains ``fast`` at ``data.val_size=0`` (all 50,000 training images, as the
   speed run trains);
5. trains the ``seed`` preset for its 20 epochs: accuracy and time;

then prints one table and writes it as JSON. Each run is timed twice: "train s"
is the trainer's own training time (the epochs' steps, the device synchronised
at each epoch's end; validation, the test pass and the first compiled step,
"compile s", excluded), "run s" the whole ``cifarlab.train`` call between two
CUDA events. After the warm-up, "compile s" should be near one step's time. Precision is bf16 where the
GPU's compute capability is 8.0 or later (Ampere on), else fp32: not
``torch.cuda.is_bf16_supported()``, which says yes on a T4 by emulation.

A step starts only when what it is expected to take fits in what is left of
``--budget-s``; a training run that overruns stops at its next epoch's end.
What did not fit is listed, with the reason, in the table and the JSON.

    python benchmarks/gpu_check.py --data ../shared/data/cifar10-jpeg.tar.gz
    python benchmarks/gpu_check.py --dry-run     # CI: every step on the CPU, synthetic data, 1 step per epoch
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, synthetic_dataset  # noqa: E402

import cifarlab  # noqa: E402
from cifarlab.config import parse_override  # noqa: E402
from cifarlab.devices import cuda_native_bf16  # noqa: E402
from cifarlab.fileio import write_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# Dry run: every epoch one step of this many images, the fast net at 1/8
# width, no compile (the CPU's compile path has its own test): all the
# script's logic in seconds, not the GPU's numbers.
DRY_BATCH = 32
DRY_OVERRIDES = {"data__max_train_images": DRY_BATCH, "train__batch_size": DRY_BATCH, "data__val_size": 20,
                 "data__max_test_images": 20, "train__eval_batch_size": 100, "train__compile": False,
                 "train__device": "cpu"}
DRY_FAST_OVERRIDES = {"model__args": {"width": 0.125}}


class _OutOfTime(Exception):
    """Raised by the epoch callback when a run would overrun the check's budget."""


class Budget:
    """Seconds left of the check's total budget, on the host's clock."""

    def __init__(self, seconds: float, clock=time.perf_counter):
        self.seconds, self.clock, self.start = seconds, clock, clock()

    def elapsed(self) -> float:
        """Seconds since the check started."""
        return self.clock() - self.start

    def left(self) -> float:
        """Seconds still available (negative once overrun)."""
        return self.seconds - self.elapsed()

    def fits(self, estimate: float) -> bool:
        """Whether a step expected to take ``estimate`` seconds fits in what is left."""
        return estimate <= self.left()


class Stopwatch:
    """Elapsed seconds between two CUDA events on a GPU; the host clock on the CPU (the dry run)."""

    def __init__(self, cuda: bool):
        self.cuda = cuda

    def __enter__(self) -> Stopwatch:
        if self.cuda:
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self._end.record()
            self._end.synchronize()
            self.seconds = self._start.elapsed_time(self._end) / 1000
        else:
            self.seconds = time.perf_counter() - self._t0


@dataclass
class Row:
    """One line of the table: a check, its runs' figures, or why it was skipped."""

    check: str
    runs: int = 0
    test_acc: list[float] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    run_seconds: list[float] = field(default_factory=list)
    compile_seconds: list[float] = field(default_factory=list)
    note: str = ""
    ok: bool = True  # False: a test failed or a run broke; a step skipped for time is not a failure

    def stats(self, key: str) -> dict[str, float] | None:
        """Mean, min and max of a list field, or None when it is empty."""
        values = getattr(self, key)
        return {"mean": statistics.mean(values), "min": min(values), "max": max(values)} if values else None


def precision_for(capability: tuple[int, int] | None) -> str:
    """The check's precision: bf16 on a GPU with native bf16 (capability 8.0 or later), else fp32.

    ``None`` is the CPU of a dry run, which runs fp32.
    """
    return "bf16" if capability is not None and cuda_native_bf16(capability) else "fp32"


def run_cuda_tests(budget: Budget, tests: str = "tests", cap_seconds: float = 150) -> Row:
    """``pytest -m cuda`` on ``tests`` in a subprocess; its counts read from a JUnit XML report."""
    row = Row("CUDA tests (pytest -m cuda)")
    timeout = max(1.0, min(cap_seconds, budget.left()))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
                                   f"--junitxml={report}", tests], cwd=REPO, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            row.ok, row.note = False, f"stopped after {timeout:.0f} s (budget)"
            return row
        if not report.is_file():
            last = (done.stdout + done.stderr).strip().splitlines() or [""]
            row.ok, row.note = False, f"pytest exited {done.returncode} without a report: {last[-1]}"
            return row
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    row.runs = counts["tests"]
    row.ok = done.returncode in (0, 5) and counts["failures"] == counts["errors"] == 0  # 5: none collected
    row.note = (f"{passed} passed, {counts['failures']} failed, {counts['errors']} errors, "
                f"{counts['skipped']} skipped")
    if not row.ok:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        row.note += "; " + "; ".join(failed[:3])
    return row


def train_once(preset: str, data, budget: Budget, cuda: bool, overrides: dict) -> dict:
    """Train ``preset`` once and return its summary with ``run_seconds``.

    Raises :class:`_OutOfTime`, with the last finished epoch, at the first epoch's end past the budget.
    """
    def deadline(metrics: dict) -> None:
        if budget.left() < 0:
            raise _OutOfTime(metrics["epoch"])

    with tempfile.TemporaryDirectory() as out, Stopwatch(cuda) as watch:
        result = cifarlab.train(preset, out_dir=out, data=data, callbacks=[deadline], progress=False, verbose=False,
                                **overrides)
    return {**result.summary, "run_seconds": watch.seconds}


def train_rows(check: str, preset: str, seeds: list[int], data, budget: Budget, cuda: bool, overrides: dict,
               estimate: float | None) -> tuple[Row, float | None]:
    """Train ``preset`` once per seed while the budget allows; the row and the last run's time."""
    row = Row(check)
    for seed in seeds:
        if estimate is not None and not budget.fits(estimate):
            left = seeds[seeds.index(seed):]
            row.note = (f"seed(s) {', '.join(map(str, left))} skipped: each needs ~{estimate:.0f} s, "
                        f"{max(budget.left(), 0):.0f} s left")
            break
        try:
            summary = train_once(preset, data, budget, cuda, {**overrides, "train__seed": seed})
        except _OutOfTime as stop:
            row.note = f"seed {seed} stopped after epoch {stop.args[0]}: the budget ran out"
            break
        except Exception as exc:  # a broken run is this check's finding: record it, go on with the next step
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            row.ok, row.note = False, f"seed {seed}: {type(exc).__name__}: {first_line}"
            break
        row.runs += 1
        row.test_acc.append(summary["test_acc"])
        row.train_seconds.append(summary["train_seconds"])
        row.run_seconds.append(summary["run_seconds"])
        row.compile_seconds.append(summary.get("compile_seconds", 0.0))
        estimate = summary["run_seconds"]
    return row, estimate


def check(data, budget: Budget, cuda: bool, overrides: dict, fast_overrides: dict, tests: str = "tests",
          fast_seeds: int = 5) -> list[Row]:
    """Every step of the check in order of priority; each skipped when the budget no longer allows it.

    ``overrides`` apply to every run, ``fast_overrides`` to the ``fast`` preset's only.
    """
    rows = [run_cuda_tests(budget, tests)]
    fast = {**overrides, **fast_overrides}
    warm, estimate = train_rows("fast warm-up (untimed: compiles)", "fast", [0], data, budget, cuda, fast, None)
    rows.append(warm)
    rows.append(train_rows(f"fast x{fast_seeds} seeds", "fast", list(range(fast_seeds)), data, budget, cuda,
                           fast, estimate)[0])
    # 10% more images than at the default split, so about 10% more time.
    rows.append(train_rows("fast, data.val_size=0", "fast", [0], data, budget, cuda, {**fast, "data__val_size": 0},
                           estimate and estimate * 1.1)[0])
    # The seed preset's time is not known before it runs: it runs last, stopped at an epoch's end if over budget.
    rows.append(train_rows("seed, 20 epochs", "seed", [0], data, budget, cuda, overrides, None)[0])
    return rows


def format_table(rows: list[Row]) -> str:
    """The check's table: one line per step, times in seconds."""
    def pct(stats):
        return "-" if stats is None else f"{stats['mean']:.2%}"

    lines = [f"{'check':<34} {'runs':>4} {'acc mean':>8} {'acc min':>8} {'acc max':>8} {'train s':>8} "
             f"{'run s':>7} {'compile s':>9}  note"]
    for r in rows:
        acc, train, run, compiling = (r.stats(k) for k in ("test_acc", "train_seconds", "run_seconds",
                                                            "compile_seconds"))
        lines.append(
            f"{r.check:<34} {r.runs:>4} {pct(acc):>8} {'-' if acc is None else format(acc['min'], '.2%'):>8} "
            f"{'-' if acc is None else format(acc['max'], '.2%'):>8} "
            f"{'-' if train is None else format(train['mean'], '.2f'):>8} "
            f"{'-' if run is None else format(run['mean'], '.2f'):>7} "
            f"{'-' if compiling is None else format(compiling['mean'], '.2f'):>9}  "
            f"{'' if r.ok else 'FAILED '}{r.note}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="dataset path (required unless --dry-run)")
    parser.add_argument("--out", default="gpu_check.json", help="where the table is written as JSON")
    parser.add_argument("--budget-s", type=float, default=480.0, help="total time budget in seconds (8 minutes)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the timed fast runs")
    parser.add_argument("--tests", default="tests", help="where pytest looks for the CUDA-marked tests")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run, e.g. --set train.compile=false")
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, synthetic data, one step per epoch: everything but CUDA itself")
    args = parser.parse_args(argv)

    if args.dry_run:
        data, capability = synthetic_dataset(n_train=300, n_test=100), None
        overrides, fast_overrides = dict(DRY_OVERRIDES), dict(DRY_FAST_OVERRIDES)
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device: this check is for a GPU machine (use --dry-run to test it on the CPU)")
        if not args.data:
            parser.error("--data is required (or use --dry-run)")
        capability, overrides, fast_overrides = torch.cuda.get_device_capability(), {"train__device": "cuda"}, {}
        data = cifarlab.load_dataset(args.data, progress=False)
    precision = precision_for(capability)
    overrides["train__precision"] = precision
    overrides.update({k.replace(".", "__"): v for k, v in map(parse_override, args.overrides)})

    budget = Budget(args.budget_s)
    rows = check(data, budget, cuda=capability is not None, overrides=overrides, fast_overrides=fast_overrides,
                 tests=args.tests, fast_seeds=args.seeds)
    table = format_table(rows)
    gpu = "none (dry run on the CPU)" if capability is None else \
        f"{torch.cuda.get_device_name()}, compute capability {capability[0]}.{capability[1]}"
    print(f"machine: {machine()}")
    print(f"gpu: {gpu}; precision {precision} (bf16 from compute capability >= 8.0); data: {data.source}")
    print(table)
    print(f"total {budget.elapsed():.0f} s of a {args.budget_s:.0f} s budget")
    result = {"machine": machine(), "gpu": gpu, "capability": capability, "precision": precision,
              "dry_run": args.dry_run, "data": data.source, "budget_seconds": args.budget_s,
              "elapsed_seconds": budget.elapsed(), "torch": torch.__version__,
              "rows": [{**asdict(r), **{f"{k}_stats": r.stats(k) for k in ("test_acc", "train_seconds",
                                                                            "run_seconds")}} for r in rows],
              "table": table}
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
