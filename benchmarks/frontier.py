"""The CPU frontier: test accuracy against wall time, on a log-time axis.

Reads the ``summary.json`` of earlier runs (``--runs``: run directories or
folders holding them) and/or trains each preset in ``--presets`` with
``--seeds`` seeds first; each preset (and precision) becomes one point at its
seeds' mean, with bars from the fastest to the slowest seed and from the lowest
to the highest accuracy. Beside them, from ``frontier_points.yaml``: figures
measured in earlier sessions, the seed recipe as a projected point (20 epochs
at its measured images/s; measured afresh when ``--data`` is given) and
DAWNBench's 2017 CPU entries, at the hours they took to 84% and to 94%.

A run's time is what a plain ``cifarlab train`` spends from loading the cached
data to exit: the summary's ``wall_seconds`` plus its ``data_seconds``.

Writes ``frontier.png`` and ``frontier.md`` (the table) into ``--out``.

    python benchmarks/frontier.py --runs runs/ --out docs/
    python benchmarks/frontier.py --presets fast-cpu fast-cpu-long --seeds 3 \\
        --data ../shared/data/cifar10-jpeg.tar.gz --out docs/
    python benchmarks/frontier.py --quick --out /tmp/frontier   # CI: synthetic data, tiny runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_flags_line, cpu_model, machine, synthetic_dataset  # noqa: E402

from cifarlab.config import parse_override  # noqa: E402
from cifarlab.errors import CifarlabError  # noqa: E402
from cifarlab.fileio import atomic_path, write_text  # noqa: E402
from cifarlab.rundir import RunDir  # noqa: E402

POINTS = Path(__file__).resolve().parent / "frontier_points.yaml"
# How each kind of point is drawn and named in the table.
KINDS = {
    "measured": {"marker": "o", "color": "tab:blue", "name": "measured now"},
    "earlier": {"marker": "o", "color": "tab:cyan", "name": "earlier figure"},
    "projected": {"marker": "D", "color": "tab:orange", "name": "projected"},
    "reference": {"marker": "s", "color": "tab:gray", "name": "reference"},
}


@dataclass
class Point:
    """One point of the chart and row of the table: a mean over seeds with its spread."""

    label: str
    kind: str  # a key of KINDS
    hardware: str
    test_acc: list[float]
    seconds: list[float]
    source: str
    group: str = ""  # a reference's entry: its 84% and 94% points are joined and named once, in the legend

    def acc(self) -> float:
        """Mean test accuracy over the seeds."""
        return statistics.mean(self.test_acc)

    def time(self) -> float:
        """Mean wall seconds over the seeds."""
        return statistics.mean(self.seconds)


def run_summaries(paths: list[str | Path]) -> list[dict]:
    """The completed runs' summaries under ``paths`` (run directories, or folders searched for them)."""
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise CifarlabError(f"{path}: no such run directory or folder")
        files = [path / RunDir.SUMMARY] if (path / RunDir.SUMMARY).is_file() else sorted(path.rglob(RunDir.SUMMARY))
        for file in files:
            summary = RunDir(file.parent).summary()
            if summary.get("status") == "completed" and summary.get("test_acc") is not None:
                found.append(summary)
    return found


def points_from_runs(summaries: list[dict], hardware: str) -> list[Point]:
    """One point per preset and precision, over its seeds, labelled ``preset (precision)``."""
    groups: dict[str, list[dict]] = {}
    for s in summaries:
        groups.setdefault(f"{s.get('preset', '?')} ({s.get('precision', 'fp32')})", []).append(s)
    return [Point(label, "measured", hardware, [s["test_acc"] for s in runs],
                  [s["wall_seconds"] + s.get("data_seconds", 0.0) for s in runs],
                  f"{len(runs)} run(s): seeds {', '.join(str(s.get('seed', '?')) for s in runs)}")
            for label, runs in sorted(groups.items())]


def points_from_file(spec: dict, seed_images_per_s: float | None = None,
                     seed_hardware: str | None = None) -> list[Point]:
    """Earlier figures, the projected seed recipe and the DAWNBench references from ``frontier_points.yaml``.

    ``seed_images_per_s`` replaces the file's measured seed-recipe speed with one measured now.
    """
    points = [Point(e["label"], "earlier", e["hardware"], list(e["test_acc"]), list(e["wall_seconds"]), e["source"])
              for e in spec.get("earlier", [])]
    seed = spec.get("seed_recipe")
    if seed:
        ips = seed_images_per_s or seed["images_per_s"]
        source = (f"{ips:.1f} images/s measured now" if seed_images_per_s else seed["source"]) + \
            f"; {seed['epochs']} epochs of {seed['train_images']:,} images"
        points.append(Point(seed["label"], "projected", seed_hardware if seed_images_per_s else seed["hardware"],
                            [seed["test_acc"]], [seed["epochs"] * seed["train_images"] / ips], source))
    for d in spec.get("dawnbench", []):
        for target in (84, 94):
            points.append(Point(f"{d['label']}, to {target}%", "reference", d["hardware"], [target / 100],
                                [d[f"hours_to_{target}"] * 3600], d["source"], group=d["label"]))
    return points


def duration(seconds: float) -> str:
    """``95 s``, ``16.9 min``, ``27.99 h``."""
    if seconds < 300:
        return f"{seconds:.0f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def markdown_table(points: list[Point]) -> str:
    """The table: one row per point, fastest first."""
    lines = ["| point | hardware | seeds | test accuracy: mean (min-max) | wall time: mean (min-max) | kind | source |",
             "|---|---|---|---|---|---|---|"]
    for p in sorted(points, key=Point.time):
        acc = f"{p.acc():.2%}" + (f" ({min(p.test_acc):.2%}-{max(p.test_acc):.2%})" if len(p.test_acc) > 1 else "")
        wall = duration(p.time()) + (f" ({duration(min(p.seconds))}-{duration(max(p.seconds))})"
                                     if len(p.seconds) > 1 else "")
        seeds = str(len(p.test_acc)) if p.kind in ("measured", "earlier") else "-"
        lines.append(f"| {p.label} | {p.hardware} | {seeds} | {acc} | {wall} | {KINDS[p.kind]['name']} | {p.source} |")
    return "\n".join(lines) + "\n"


def plot(points: list[Point], path: str | Path, title: str) -> None:
    """Accuracy against log wall time: seed spread as bars, each point labelled; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator

    fig, ax = plt.subplots(figsize=(9, 5.4), dpi=100)
    for kind, style in KINDS.items():
        chosen = sorted((p for p in points if p.kind == kind and not p.group), key=Point.time)
        for i, p in enumerate(chosen):
            x, y = p.time(), p.acc() * 100
            xerr = [[x - min(p.seconds)], [max(p.seconds) - x]]
            yerr = [[y - min(p.test_acc) * 100], [max(p.test_acc) * 100 - y]]
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=style["marker"], color=style["color"], ms=7, capsize=3,
                        mfc="white" if kind == "projected" else style["color"])
            # alternately above left and below right, so neighbours' labels do not overlap
            ax.annotate(p.label, (x, y), textcoords="offset points", xytext=(-7, 6) if i % 2 == 0 else (7, -13),
                        ha="right" if i % 2 == 0 else "left", fontsize=8)
        if chosen:
            ax.plot([], [], style["marker"], color=style["color"], label=style["name"],
                    mfc="white" if kind == "projected" else style["color"])
    groups = list(dict.fromkeys(p.group for p in points if p.group))
    for group, marker in zip(groups, "s^vP<>*X"):
        members = sorted((p for p in points if p.group == group), key=Point.time)
        ax.plot([p.time() for p in members], [p.acc() * 100 for p in members], marker=marker, ms=6, ls=":", lw=1,
                color=KINDS["reference"]["color"], label=group)
    ax.set_xscale("log")
    ticks = [(60, "1 min"), (600, "10 min"), (3600, "1 h"), (36000, "10 h"), (360000, "100 h")]
    lo, hi = min(p.time() for p in points) / 3, max(p.time() for p in points) * 3
    ax.xaxis.set_major_locator(FixedLocator([t for t, _ in ticks if lo <= t <= hi]))
    ax.set_xticklabels([name for t, name in ticks if lo <= t <= hi])
    ax.set_xlim(lo, hi)
    ax.set_xlabel("wall time (log scale)")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def train_presets(presets: list[str], seeds: int, data, out: Path, overrides: dict) -> list[dict]:
    """Train every preset with seeds 0..seeds-1 into ``out``; their summaries."""
    import cifarlab

    summaries = []
    for preset in presets:
        for seed in range(seeds):
            result = cifarlab.train(preset, out_dir=out / f"{preset}-seed{seed}", data=data, progress=False,
                                    verbose=False, train__seed=seed, **overrides)
            summaries.append(result.summary)
            print(f"{preset} seed {seed}: {result.summary['test_acc']:.2%} in "
                  f"{result.summary['wall_seconds'] + result.summary['data_seconds']:.1f} s")
    return summaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=[], help="run directories, or folders holding them")
    parser.add_argument("--presets", nargs="*", default=[], help="presets to train first, e.g. fast-cpu fast-cpu-long")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per preset in --presets")
    parser.add_argument("--data", help="dataset path (for --presets and to measure the seed recipe's images/s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the --presets runs, e.g. --set train.precision=fp32")
    parser.add_argument("--points", default=str(POINTS), help="earlier figures and references (YAML)")
    parser.add_argument("--hardware", default=f"{cpu_model()}, {os.cpu_count()} cores",
                        help="the machine the runs were measured on, for the table (default: this one)")
    parser.add_argument("--out", default="docs", help="folder for frontier.png and frontier.md")
    parser.add_argument("--quick", action="store_true", help="CI mode: synthetic data, fast-cpu 1 epoch, 2 seeds")
    args = parser.parse_args(argv)

    overrides = {k.replace(".", "__"): v for k, v in map(parse_override, args.overrides)}
    seed_ips = None
    data = None
    if args.quick:
        data = synthetic_dataset()
        args.presets, args.seeds = args.presets or ["fast-cpu"], min(args.seeds, 2)
        overrides.update(train__epochs=1, train__batch_size=100, data__val_size=100)
    elif args.data:
        import cifarlab

        data = cifarlab.load_dataset(args.data, progress=False)
    elif args.presets:
        parser.error("--presets needs --data (or --quick)")
    if data is not None:
        from time_to_accuracy import seed_recipe_images_per_s

        seed_ips = seed_recipe_images_per_s(data, 120 if args.quick else 600)

    try:
        summaries = run_summaries(args.runs)
        with tempfile.TemporaryDirectory() as tmp:
            summaries += train_presets(args.presets, args.seeds, data, Path(tmp), overrides)
        spec = yaml.safe_load(Path(args.points).read_text()) or {}
    except (OSError, yaml.YAMLError, CifarlabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    hardware = f"{args.hardware} ({cpu_flags_line()})"
    points = points_from_runs(summaries, hardware) + points_from_file(spec, seed_ips, hardware)
    if not points:
        print("error: nothing to plot: no completed runs found and no points file entries", file=sys.stderr)
        return 2

    out = Path(args.out)
    table = markdown_table(points)
    write_text(out / "frontier.md", table)
    plot(points, out / "frontier.png",
         f"CIFAR-10 test accuracy against wall time on CPUs (cifarlab runs: {args.hardware})")
    print(f"machine: {machine()}")
    if seed_ips:
        print(f"seed recipe measured at {seed_ips:.1f} images/s")
    print(table, end="")
    print(f"written: {out / 'frontier.png'}, {out / 'frontier.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
