"""Training end to end: artifacts, resume, divergence, evaluation and prediction agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import synthetic
import torch
import yaml
from hardware import cpu_computes_bf16
from PIL import Image
from safetensors.torch import load_file

import cifarlab
import cifarlab.training.setup
from cifarlab.cli import main
from cifarlab.config import load
from cifarlab.errors import ConfigError, ModelError
from cifarlab.models import build_model
from cifarlab.models.weights import save_weights
from cifarlab.rundir import RunDir
from cifarlab.training.trainer import TrainingDiverged

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--set", "data.val_size=50", "--set", "train.batch_size=50", "--no-progress"]


def _weights_equal(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_cli_one_epoch_writes_every_artifact_and_evaluate_agrees(tiny_imagefolder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "seed", "--data", str(tiny_imagefolder), "--epochs", "1",
                 "--max-train-images", "200", "--out", str(out), "--set", "train.log_every=2", *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "epoch" in printed and "test accuracy" in printed
    for name in ("config.yaml", "env.json", "metrics.jsonl", "summary.json", "weights.safetensors",
                 "checkpoint.safetensors", "plots/loss.png", "plots/accuracy.png", "plots/confusion.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1
    assert summary["params"] == 2_753_546 and summary["train_images"] == 200
    env = json.loads((out / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    # The CPU named, with its flags: a timing in a run directory says what it was measured on.
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert f"model name\t: {env['cpu']}\n" in cpuinfo and env["cores"] == os.cpu_count()
    assert env["cpu_flags"]["AVX2"] == (" avx2 " in cpuinfo) and set(env["cpu_flags"]) >= {"AVX2", "AVX-512 BF16"}
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["optim"]["lr"] == 5e-4 and config["train"]["epochs"] == 1
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["type"] == "step"]
    assert len(steps) == 4 and all(np.isfinite(r["loss"]) for r in steps)  # 200 images / batch 50
    assert [r["batch"] for r in records if r["type"] == "running_loss"] == [2, 4]
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [1]

    # The expected numbers from a forward pass written here, not from evaluate_split (which both
    # training's test pass and `cifarlab evaluate` use): the saved weights in the seed network, the
    # test images scaled to 0..1 and normalised with the config's mean and std, softmax and argmax.
    # One epoch on 200 images may predict a single class, so the probabilities and the loss are
    # compared too: a wrong normalisation would leave a constant argmax unchanged, not those.
    model = build_model(load("seed").model)
    model.load_state_dict(load_file(str(out / "weights.safetensors")))
    model.eval()
    test = cifarlab.load_dataset(tiny_imagefolder, progress=False)
    mean, std = (torch.tensor(config["data"][k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    x = (torch.from_numpy(np.array(test.test_images)).permute(0, 3, 1, 2).float() / 255 - mean) / std
    labels = torch.from_numpy(np.array(test.test_labels)).long()
    with torch.no_grad():
        logits = model(x)
    predicted = logits.argmax(1).numpy()
    right = int((predicted == test.test_labels).sum())
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (test.test_labels, predicted), 1)

    saved = RunDir(out).predictions()
    assert torch.equal(saved["label"], labels[saved["index"]])
    assert torch.allclose(saved["probs"], logits.softmax(1)[saved["index"]], atol=1e-5)
    assert summary["test_acc"] == pytest.approx(right / 100, abs=1e-6)  # stored as float32
    assert main(["evaluate", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == pytest.approx(right / 100, abs=1e-6)
    assert report["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert report["num_images"] == 100 and report["confusion"] == confusion.tolist()
    assert main(["evaluate", str(out / "weights.safetensors"), "--split", "val"]) == 0
    assert "val accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_fast_preset_learns_separable_data(tiny_imagefolder, tmp_path):
    result = cifarlab.train("fast-cpu", out_dir=tmp_path / "fast", data=cifarlab.load_dataset(tiny_imagefolder),
                            progress=False, verbose=False, train__epochs=2, train__batch_size=50,
                            data__val_size=50)
    assert result.summary["test_acc"] > 0.5  # chance is 0.1
    # The preset's precision is auto: bf16 autocast exactly where this CPU computes bf16 natively.
    assert result.summary["precision"] == ("bf16" if cpu_computes_bf16() else "fp32")


@pytest.mark.slow
def test_compiled_training_learns_and_its_weights_evaluate_the_same(tiny_imagefolder, tmp_path, capsys):
    # torch.compile (the fast preset's setting) builds C++ kernels on the CPU: about 45 s here.
    data = cifarlab.load_dataset(tiny_imagefolder)
    result = cifarlab.train("fast-cpu", out_dir=tmp_path / "compiled", data=data, progress=False, verbose=False,
                            train__epochs=2, train__batch_size=50, data__val_size=50, train__compile=True)
    assert result.config.train.compile and result.summary["test_acc"] > 0.5
    assert main(["evaluate", str(tmp_path / "compiled"), "--data", str(tiny_imagefolder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(result.summary["test_acc"], abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["seed", "fast-cpu"])
def test_resume_after_interrupt_gives_the_same_final_weights(tiny_imagefolder, tmp_path, preset):
    data = cifarlab.load_dataset(tiny_imagefolder)
    kw = dict(data=data, progress=False, verbose=False, train__epochs=3, train__batch_size=50,
              data__val_size=50, data__max_train_images=150)
    cifarlab.train(preset, out_dir=tmp_path / "straight", **kw)

    def stop_after_first_epoch(metrics):
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cifarlab.train(preset, out_dir=tmp_path / "killed", callbacks=[stop_after_first_epoch], **kw)
    assert json.loads((tmp_path / "killed" / "summary.json").read_text())["status"] == "interrupted"
    resumed = cifarlab.train(resume=tmp_path / "killed", data=data, progress=False, verbose=False)
    assert resumed.summary["status"] == "completed" and resumed.summary["epochs_completed"] == 3
    assert _weights_equal(tmp_path / "straight" / "weights.safetensors", tmp_path / "killed" / "weights.safetensors")
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()
              if '"type": "epoch"' in x]
    assert epochs == [1, 2, 3]


@pytest.mark.slow
def test_sigkill_then_resume_from_the_cli(tiny_imagefolder, tmp_path):
    args = ["--preset", "seed", "--data", str(tiny_imagefolder), "--epochs", "3", "--max-train-images", "150",
            *SMALL]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "-m", "cifarlab", "train", *args, "--out", str(tmp_path / "straight")],
                   check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "cifarlab", "train", *args, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["status"] == "running" and summary["epochs_completed"] < 3  # died mid-run
    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    assert _weights_equal(tmp_path / "straight" / "weights.safetensors", killed / "weights.safetensors")


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tiny_imagefolder, tmp_path, monkeypatch):
    data = cifarlab.load_dataset(tiny_imagefolder)
    built = []
    real_build = cifarlab.training.setup.build_model
    monkeypatch.setattr("cifarlab.training.setup.build_model", lambda cfg: built.append(real_build(cfg))
                        or built[-1])
    saved = {}

    def poison_after_first_epoch(metrics):
        # Non-finite weights make the next loss NaN, as a runaway learning rate would.
        saved["epoch1"] = load_file(str(tmp_path / "run" / "checkpoint.safetensors"))
        with torch.no_grad():
            for p in built[0].parameters():
                p.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, batch \d+; the last good "
                                               r"checkpoint \(epoch 1\) is kept"):
        cifarlab.train("seed", out_dir=tmp_path / "run", data=data, callbacks=[poison_after_first_epoch],
                       progress=False, verbose=False, train__epochs=3, train__batch_size=50, data__val_size=50)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "diverged"
    kept = load_file(str(tmp_path / "run" / "checkpoint.safetensors"))
    assert all(torch.equal(kept[k], saved["epoch1"][k]) for k in kept)


@pytest.mark.slow
def test_runaway_learning_rate_diverges_from_the_cli(tiny_imagefolder, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_imagefolder), "--out", str(tmp_path / "r"), "--set", "optim.name=sgd",
                 "--set", "optim.lr=1e12", "--set", "model.args={batchnorm: false}", "--epochs", "2", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "loss became" in err and "Try a lower optim.lr" in err and err.strip().count("\n") == 0


@pytest.mark.slow
def test_predict_any_image_file(tiny_imagefolder, tmp_path, capsys):
    # The preset's rates are tuned for 175 steps an epoch; these 5 tiny steps want less.
    run = cifarlab.train("fast-cpu", out_dir=tmp_path / "run", data=cifarlab.load_dataset(tiny_imagefolder),
                         progress=False, verbose=False, train__epochs=4, train__batch_size=50, data__val_size=50,
                         optim__lr=0.2)
    assert run.summary["val_acc"] >= 0.9, run.summary  # else the class check below tests nothing
    images, _ = synthetic.make_arrays(1, seed=7)
    ship = tmp_path / "ship.png"
    Image.fromarray(images[8]).save(ship)
    big = tmp_path / "ship.webp"  # 3x larger, lossy: predict must scale it back to 32x32
    Image.fromarray(images[8]).resize((96, 96), Image.NEAREST).save(big)
    scaled = tmp_path / "ship-scaled.png"  # what the documented scaling (whole image, bicubic) makes of it
    Image.open(big).convert("RGB").resize((32, 32), Image.Resampling.BICUBIC).save(scaled)
    grey = tmp_path / "grey.bmp"
    Image.fromarray(images[3]).convert("L").save(grey)
    assert main(["predict", str(run.run_dir), str(ship), str(big), str(scaled), str(grey), "--top-k", "2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [len(p["top"]) for p in out] == [2, 2, 2, 2]
    assert out[0]["top"][0]["class"] == "ship"
    assert out[0]["top"][0]["probability"] >= out[0]["top"][1]["probability"]
    # The blur and the lossy WebP make the big file a hard image for a network trained on 300; only the
    # scaling is checked on it: its predictions are those of the image scaled down beforehand.
    assert [t["class"] for t in out[1]["top"]] == [t["class"] for t in out[2]["top"]]
    assert [t["probability"] for t in out[1]["top"]] == pytest.approx([t["probability"] for t in out[2]["top"]],
                                                                      abs=1e-6)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    assert main(["predict", str(run.run_dir), str(tmp_path / "broken.png")]) == 2
    assert "broken.png: cannot decode image" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--set", "optim.lr=-1"], "key 'optim.lr' must be positive"),
    (["train", "--set", "optim.lrr=1"], "unknown key 'optim.lrr'"),
    (["train", "--set", "model.name=resnet19", "--data", "MISSING"], "MISSING: no such dataset file or folder"),
    (["train", "--preset", "nope"], "unknown preset 'nope'"),
    (["evaluate", "no/such/run"], "no/such/run: no such run directory or weights file"),
    (["train", "--resume", "no/such/run"], "cannot resume"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and "Traceback" not in err


def test_unknown_model_is_named(tiny_imagefolder, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_imagefolder), "--set", "model.name=resnet19", "--out",
                 str(tmp_path / "r"), *SMALL]) == 2
    assert "unknown model 'resnet19'" in capsys.readouterr().err


def test_corrupt_weights_file_is_a_model_error(tmp_path):
    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a readable safetensors file"):
        cifarlab.evaluate(bad)


def test_evaluate_batch_size_below_one_is_a_config_error(tiny_imagefolder, tmp_path):
    cfg = load("seed", model__name="seedlike", model__args={"conv": 2, "fc": 1, "width": 8},
               data__path=str(tiny_imagefolder), data__val_size=50)
    save_weights(tmp_path / "weights.safetensors", build_model(cfg.model), cfg, synthetic.CLASSES)
    with pytest.raises(ConfigError, match="^batch_size must be at least 1, got 0$"):
        cifarlab.evaluate(tmp_path / "weights.safetensors", batch_size=0)


@pytest.mark.slow
def test_debug_flag_shows_the_traceback():
    # A real process: the traceback is what the interpreter prints when --debug lets the error through.
    argv = [sys.executable, "-m", "cifarlab", "train", "--set", "optim.lr=-1"]
    plain = subprocess.run(argv, capture_output=True, text=True)
    debug = subprocess.run([*argv[:3], "--debug", *argv[3:]], capture_output=True, text=True)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert debug.returncode == 1 and debug.stderr.startswith("Traceback (most recent call last):")
    assert '  File "' in debug.stderr  # stack frames, not just the one-line message
    assert debug.stderr.rstrip().endswith("ConfigError: preset seed: key 'optim.lr' must be positive, got -1.0")


@pytest.mark.slow
def test_seed_one_epoch_on_2000_real_images_beats_chance(shared_cifar, tmp_path, capsys):
    # A stratified 2,000 of the test images and 1,000 validation images: evaluating the seed
    # network runs at ~140 images/s on two cores, so the full 15,000 would take most of CI's time.
    assert main(["train", "--preset", "seed", "--data", str(shared_cifar), "--epochs", "1",
                 "--max-train-images", "2000", "--set", "data.val_size=1000", "--set", "data.max_test_images=2000",
                 "--out", str(tmp_path / "real"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "real" / "summary.json").read_text())
    # Chance is 0.10; BN statistics settle after 34 steps.
    assert summary["test_images"] == 2000 and summary["test_acc"] > 0.18, summary
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "real"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(summary["test_acc"], abs=1e-9)
