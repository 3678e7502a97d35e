"""benchmarks/frontier.py on synthetic run summaries: grouping by preset, the reference points, the table and chart."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "frontier.py"
_spec = importlib.util.spec_from_file_location("frontier", _PATH)
frontier = importlib.util.module_from_spec(_spec)
sys.modules["frontier"] = frontier
_spec.loader.exec_module(frontier)


def _run(folder: Path, preset: str, seed: int, acc: float, wall: float, precision: str = "fp32",
         status: str = "completed") -> None:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({
        "status": status, "preset": preset, "precision": precision, "seed": seed,
        "test_acc": acc if status == "completed" else None, "wall_seconds": wall, "data_seconds": 2.0}))


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    for seed, (acc, wall) in enumerate([(0.84, 100.0), (0.85, 110.0), (0.83, 120.0)]):
        _run(root / f"a{seed}", "fast-cpu", seed, acc, wall)
    _run(root / "nested" / "long", "fast-cpu-long", 0, 0.90, 1000.0, precision="bf16")
    _run(root / "killed", "fast-cpu", 3, 0.0, 50.0, status="interrupted")
    return root


def test_completed_runs_become_one_point_per_preset_and_precision(runs):
    summaries = frontier.run_summaries([runs])
    assert len(summaries) == 4  # the interrupted run has no test accuracy
    points = {p.label: p for p in frontier.points_from_runs(summaries, "test machine")}
    assert set(points) == {"fast-cpu (fp32)", "fast-cpu-long (bf16)"}
    fast = points["fast-cpu (fp32)"]
    assert sorted(fast.test_acc) == [0.83, 0.84, 0.85] and fast.acc() == pytest.approx(0.84)
    assert sorted(fast.seconds) == [102.0, 112.0, 122.0]  # wall plus loading the data
    assert fast.kind == "measured" and fast.hardware == "test machine"
    # one run directory given directly reads as one run
    assert len(frontier.run_summaries([runs / "a0"])) == 1


def test_reference_points_and_the_projected_seed_recipe_come_from_the_points_file():
    spec = yaml.safe_load(frontier.POINTS.read_text())
    points = frontier.points_from_file(spec)
    references = [p for p in points if p.kind == "reference"]
    assert len(references) == 2 * len(spec["dawnbench"]) and len({p.group for p in references}) == 4
    fastest_94 = min((p for p in references if p.acc() == 0.94), key=frontier.Point.time)
    assert fastest_94.time() == pytest.approx(79.45 * 3600) and "16 vCPUs" in fastest_94.hardware
    seed = spec["seed_recipe"]
    (projected,) = [p for p in points if p.kind == "projected"]
    assert projected.time() == pytest.approx(seed["epochs"] * seed["train_images"] / seed["images_per_s"])
    (remeasured,) = [p for p in frontier.points_from_file(spec, seed_images_per_s=100.0, seed_hardware="here")
                     if p.kind == "projected"]
    assert remeasured.time() == pytest.approx(9000.0) and "measured now" in remeasured.source
    assert remeasured.hardware == "here"


def test_table_rows_run_fastest_first_with_their_spread(runs):
    points = frontier.points_from_runs(frontier.run_summaries([runs]), "m")
    table = frontier.markdown_table(points).splitlines()
    assert table[0].startswith("| point |") and len(table) == 4
    assert table[2].startswith("| fast-cpu (fp32) | m | 3 | 84.00% (83.00%-85.00%) | 112 s (102 s-122 s) |")
    assert table[3].startswith("| fast-cpu-long (bf16) | m | 1 | 90.00% | 16.7 min |")


def test_main_writes_the_chart_and_the_table(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert frontier.main(["--runs", str(runs), "--out", str(out)]) == 0
    png, md = (out / "frontier.png").read_bytes(), (out / "frontier.md").read_text()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) < 300_000
    assert "| fast-cpu (fp32) |" in md and "DAWNBench 2017" in md and "seed recipe (projected)" in md
    assert md in capsys.readouterr().out


def test_a_missing_runs_folder_is_one_line_and_status_2(tmp_path, capsys):
    assert frontier.main(["--runs", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere" in err and "no such run directory" in err
