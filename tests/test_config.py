"""Config composition, type checking and error messages."""

from pathlib import Path

import pytest
import torch

from cifarlab import config as c
from cifarlab.errors import ConfigError

# Every preset file the package ships, found on disk: a new preset is tested without editing this file.
SHIPPED_PRESETS = sorted(p.stem for p in (Path(c.__file__).parent / "presets").glob("*.yaml"))


def test_seed_preset_is_the_writeup_recipe():
    cfg = c.compose("seed")
    assert cfg.model.name == "seed"
    assert (cfg.optim.name, cfg.optim.lr) == ("adam", 5e-4)
    assert (cfg.train.batch_size, cfg.train.epochs) == (60, 20)
    assert cfg.data.mean == [0.5, 0.5, 0.5] and cfg.data.std == [0.5, 0.5, 0.5]
    assert not cfg.data.augment.flip and cfg.data.augment.crop_padding == 0
    assert cfg.train.label_smoothing == 0 and cfg.schedule.name == "constant"


def test_the_preset_files_are_the_listed_presets():
    assert "seed" in SHIPPED_PRESETS and SHIPPED_PRESETS == c.list_presets()


@pytest.mark.parametrize("name", SHIPPED_PRESETS)
def test_every_shipped_preset_builds_a_model_and_optimizer_that_train(name):
    from cifarlab.models import build_model
    from cifarlab.training.optim import build_optimizer

    assert name in c.list_presets()
    cfg = c.compose(name)
    model = build_model(cfg.model)
    optimizer = build_optimizer(model, cfg.optim)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
    optimizer.step()
    after = [p for p in model.parameters() if p.requires_grad]
    assert all(not torch.equal(a, b) for a, b in zip(after, before))


def test_file_then_overrides_compose_on_top_of_the_preset(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("preset: seed\noptim: {lr: 1e-3, name: sgd}\ntrain: {epochs: 3}\n")
    cfg = c.compose(config_file=f, overrides=["train.epochs=5", "optim.nesterov=true"])
    assert cfg.optim.lr == 1e-3 and cfg.optim.name == "sgd" and cfg.optim.nesterov is True
    assert cfg.train.epochs == 5
    assert cfg.train.batch_size == 60  # untouched preset value survives


def test_yaml_scientific_notation_without_dot_is_a_number():
    assert c.compose("seed", overrides=["optim.lr=5e-4"]).optim.lr == 5e-4


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown key 'optim.lrr' (did you mean 'optim.lr'?)"),
    ("optim.lr=-0.1", "key 'optim.lr' must be positive"),
    ("train.epochs=abc", "key 'train.epochs' must be an integer"),
    ("train.batch_size=2.5", "key 'train.batch_size' must be an integer"),
    ("optim.name=rmsprop", "key 'optim.name' must be one of adam, adamw, sgd"),
    ("data.augment.flip=3", "key 'data.augment.flip' must be true or false"),
    ("data.mean=[0.5]", "key 'data.mean' must have 3 numbers"),
    ("train.label_smoothing=1.5", "key 'train.label_smoothing' must be in [0, 1)"),
    ("nonsense", "expected KEY=VALUE"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=None) as info:
        c.compose("seed", overrides=[override])
    assert message in str(info.value)


def test_unknown_key_in_file_names_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError) as info:
        c.compose(config_file=f)
    assert str(f) in str(info.value) and "train.epoch" in str(info.value)


def test_invalid_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        c.compose(config_file=f)


def test_unknown_preset_suggests_the_close_one():
    with pytest.raises(ConfigError, match="did you mean 'seed'"):
        c.compose("sed")


def test_load_accepts_config_dict_name_and_keyword_overrides():
    base = c.load("seed", train__epochs=2)
    assert base.train.epochs == 2
    assert c.load(base, optim__lr=0.1).optim.lr == 0.1
    assert c.load({"train": {"batch_size": 7}}).train.batch_size == 7


def test_config_round_trips_through_yaml():
    import yaml

    cfg = c.compose("seed", overrides=["optim.lr=0.01", "model.args={dropout: 0.0}"])
    assert c.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


@pytest.mark.parametrize("epochs, val_every, validated", [(5, 1, [1, 2, 3, 4, 5]), (5, 2, [2, 4, 5]),
                                                          (4, 2, [2, 4]), (5, 0, [5])])
def test_validated_epochs_are_every_nth_and_the_last(epochs, val_every, validated):
    train = c.TrainConfig(epochs=epochs, val_every=val_every)
    assert [e for e in range(1, epochs + 1) if train.validates(e)] == validated


def test_test_time_views_per_image():  # the image, its mirror, and both shifted: airbench's six views
    assert [c.TrainConfig(tta_flip=f, tta_translate=t).views() for f, t in [(False, 0), (True, 0), (False, 2),
                                                                          (True, 2)]] == [1, 2, 3, 6]
