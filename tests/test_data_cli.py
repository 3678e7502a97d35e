"""``cifarlab data`` on synthetic data."""

from __future__ import annotations

import json

import synthetic

from cifarlab.cli import main


def test_describes_the_dataset_and_reports_the_cache_hit(tmp_path, capsys, isolated_cache):
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.zip", 6, 2)
    assert main(["data", "--data", str(archive), "--val-size", "20"]) == 0
    out = capsys.readouterr().out
    assert f"source       ImageFolder archive {archive}" in out
    assert "images       train 60, test 20; validation 20 held out of train (class-stratified), leaving 40" in out
    assert "  airplane          6      2" in out and "  truck             6      2" in out
    assert f"cache file   {isolated_cache / 'arrays'}" in out and "(written)" in out
    assert "loaded in" in out
    assert main(["data", "--data", str(archive), "--val-size", "20"]) == 0
    assert "(hit)" in capsys.readouterr().out


def test_json_output(tmp_path, capsys):
    folder = synthetic.make_official_folder(tmp_path, 6, 2)
    cache_dir = tmp_path / "my-cache"
    assert main(["data", "--data", str(folder), "--cache-dir", str(cache_dir), "--val-size", "10", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == f"CIFAR-10 python version {folder}"
    assert (info["train"], info["test"], info["validation"]) == (60, 20, 10)
    assert info["train_per_class"] == [6] * 10 and info["test_per_class"] == [2] * 10
    assert info["classes"][0] == "airplane" and len(info["fingerprint"]) == 64
    assert info["cache_file"].startswith(str(cache_dir)) and info["cache_hit"] is False
    assert isinstance(info["seconds"], float)


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["data", "--data", str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"cifarlab data: error: {tmp_path / 'missing'}: no such dataset file or folder\n"
    assert captured.out == ""
    archive = synthetic.make_imagefolder_archive(tmp_path / "d.tar", 1, 1)
    assert main(["data", "--data", str(archive), "--val-size", "50"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "validation size must be between 0 and 9" in err and "Traceback" not in err
