"""`cifarlab train`'s shortcut options are typed by argparse and set as typed values, never re-read as YAML."""

from __future__ import annotations

import pytest
import yaml

from cifarlab.cli import main


def _printed_config(capsys, *argv: str) -> dict:
    assert main(["train", *argv, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("path", ["2024", "null", "yes", "1e3", "[x]", "a: b"])
def test_data_is_a_path_whatever_it_looks_like_in_yaml(capsys, path):
    assert _printed_config(capsys, "--data", path)["data"]["path"] == path


def test_numeric_shortcuts_set_integers(capsys):
    cfg = _printed_config(capsys, "--epochs", "3", "--seed", "7", "--max-train-images", "500", "--device", "cpu")
    assert (cfg["train"]["epochs"], cfg["train"]["seed"], cfg["train"]["device"]) == (3, 7, "cpu")
    assert cfg["data"]["max_train_images"] == 500


def test_shortcuts_apply_after_every_set(capsys):
    cfg = _printed_config(capsys, "--set", "train.epochs=5", "--epochs", "2", "--set", "train={epochs: 9}")
    assert cfg["train"]["epochs"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
    (["--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
    (["--max-train-images", "many"], "argument --max-train-images: invalid int value: 'many'"),
    (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
])
def test_a_mistyped_shortcut_is_an_argparse_error_naming_the_flag(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(["train", *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_a_value_the_config_rejects_names_the_key(capsys):
    assert main(["train", "--epochs", "0", "--print-config"]) == 2
    assert "train.epochs" in capsys.readouterr().err


def test_resume_still_refuses_shortcuts(capsys):
    assert main(["train", "--resume", "somewhere", "--epochs", "2"]) == 2
    assert "--resume continues a run with its recorded config" in capsys.readouterr().err
