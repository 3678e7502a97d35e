"""The ``fast-cpu`` preset in one file, from cifarlab's public building blocks, in the style of airbench.

    python examples/fast_cpu_in_one_file.py --data ../shared/data/cifar10-jpeg.tar.gz --seed 0

One table of hyperparameters, the data on the device as uint8, augmentation drawn batch-wise there, then the
loop: Muon for the conv filters, SGD-Nesterov for the rest, the rate falling linearly to zero, label smoothing,
the alternating flip, FreezeOut, and a six-view test-time average at the end. It trains the same weights as
``cifarlab train --preset fast-cpu`` on the same seed and data, bit for bit, in bf16 and in fp32
(tests/test_fast_cpu_in_one_file.py checks this on synthetic data): the same validation split, the same order of
random draws (global seed -> network init; a generator of its own -> first-epoch flips, then per epoch a
permutation and per batch the crops), the same batches and the same operations. The batch pipeline is the
trainer's ``DeviceLoader`` written out (normalise, crop, flip, channels-last), so a change to either shows as
that test failing, not as a silent drift. What it leaves out changes no number: the run directory,
checkpoints, progress bars, plots, resuming.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cifarlab
from cifarlab.data import split_train_val, stratified_subset
from cifarlab.data.augment import flip, random_crop
from cifarlab.data.loader import normalize, to_device_images
from cifarlab.devices import resolve_device, resolve_precision
from cifarlab.evaluation.inference import tta_logits
from cifarlab.models.fast import FastNet
from cifarlab.training.muon import Muon

# cifarlab/presets/fast-cpu.yaml, whose comments say why each value is what it is.
HYP = {
    "net": {"widths": [16, 80, 96],  # airbench94's 64-256-256, narrowed for two cores
            "whiten_bias_epochs": 1,  # the whitening layer's bias trains in epoch 1 only
            "group_epochs": [2, None, None]},  # FreezeOut: group 1 freezes after epoch 2
    "opt": {"muon_lr": 0.08, "muon_momentum": 0.6,  # conv filters
            "lr": 13.6, "head_lr": 171.5, "momentum": 0.85, "nesterov": True,  # biases; the linear head
            "weight_decay": 5.12e-4,  # the fraction of the SGD weights removed per step at full rate
            "label_smoothing": 0.2},
    "crop_padding": 2,  # translate by up to 2 pixels; the flip alternates (below)
    "data": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616], "val_size": 5000},
    "epochs": 4,
    "batch_size": 256,
    "eval_batch_size": 250,  # stays in the CPU's caches
    "tta_translate": 1,  # six views: (the image, shifted 1 pixel up-left, down-right) x (as is, mirrored)
    "precision": "auto",  # bf16 autocast where the device computes it natively
}
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def on_device(images, labels, device):
    """uint8 NCHW images and int64 labels (what cross-entropy takes) on ``device``."""
    return to_device_images(images, device), torch.as_tensor(labels, dtype=torch.int64).to(device)


@torch.no_grad()
def accuracy(model, images, labels, autocast, views):
    """Accuracy on uint8 ``images``; ``views``: averaged over the six test-time views, else the plain images."""
    model.eval()
    predictions = []
    for i in range(0, len(images), HYP["eval_batch_size"]):
        x = normalize(images[i:i + HYP["eval_batch_size"]], HYP["data"]["mean"], HYP["data"]["std"])
        with autocast():
            logits = tta_logits(model, x.contiguous(memory_format=torch.channels_last),
                                flip=views, translate=HYP["tta_translate"] if views else 0)
        predictions.append(logits.argmax(1))
    model.train()
    # A float32 mean, as the trainer's report takes it, so the printed figures agree to the last digit.
    return float((torch.cat(predictions) == labels).float().mean())


def main(argv=None):
    """Train ``fast-cpu`` as the command line says; print a line per epoch and the test accuracy.

    Returns the trained model and its six-view test accuracy.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA) if SHARED_DATA.is_file() else None,
                        help="CIFAR-10 in any form `cifarlab train --data` takes (default: the shared copy if "
                             "present, else the official archive, downloaded into the cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=HYP["epochs"])
    parser.add_argument("--max-train-images", type=int, help="a class-stratified subset, for a quick run")
    parser.add_argument("--val-size", type=int, default=HYP["data"]["val_size"],
                        help="validation images held out of the training set (fewer for small data)")
    args = parser.parse_args(argv)
    mean, std, bs, opt = HYP["data"]["mean"], HYP["data"]["std"], HYP["batch_size"], HYP["opt"]
    device = resolve_device("auto")
    precision = resolve_precision(HYP["precision"], device)

    def autocast():
        return torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None)

    # Data: the split does not depend on the seed, so every seed is validated on the same images.
    data = cifarlab.load_dataset(args.data)
    train_idx, val_idx = split_train_val(data.train_labels, args.val_size, seed=0)
    if args.max_train_images is not None:
        train_idx = stratified_subset(train_idx, data.train_labels, args.max_train_images, seed=0)
    train_x, train_y = on_device(data.train_images[train_idx], data.train_labels[train_idx], device)
    val_x, val_y = on_device(data.train_images[val_idx], data.train_labels[val_idx], device)
    test_x, test_y = on_device(data.test_images, data.test_labels, device)

    # Network: the global seed draws its initial weights, then the whitening filters come from the images.
    torch.manual_seed(args.seed)
    generator = torch.Generator(device=device).manual_seed(args.seed)  # every augmentation draw
    model = FastNet(**HYP["net"]).to(device)
    model.init_from_data(normalize(train_x[:5000], mean, std))
    model = model.to(memory_format=torch.channels_last)

    # Muon steps each filter bank along its orthogonalised momentum; everything else is plain SGD-Nesterov.
    trainable = [p for p in model.parameters() if p.requires_grad]
    sgd = {"momentum": opt["momentum"], "nesterov": opt["nesterov"], "weight_decay": opt["weight_decay"],
           "muon": False}
    optimizer = Muon([
        {"params": [p for p in trainable if p.ndim == 4], "lr": opt["muon_lr"], "momentum": opt["muon_momentum"],
         "nesterov": opt["nesterov"], "weight_decay": 0.0, "muon": True},
        {"params": [p for p in trainable if p.ndim not in (2, 4)], "lr": opt["lr"], **sgd},
        {"params": [p for p in trainable if p.ndim == 2], "lr": opt["head_lr"], **sgd}])

    # A split no larger than a batch is one (smaller) batch; a larger one drops its incomplete last batch.
    n = len(train_y)
    steps_per_epoch = max(1, n // bs)
    total_steps, step = steps_per_epoch * args.epochs, 0
    # Alternating flip: each image's mirroring is drawn once and then alternates, so every two epochs show
    # each image both ways.
    flip_first = torch.rand(n, device=device, generator=generator) < 0.5

    print(f"{'epoch':>5} {'train_loss':>10} {'train_acc':>9} {'val_acc':>7} {'lr':>8} {'seconds':>8} {'img/s':>7}")
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        model.start_epoch(epoch)  # freezes the whitening bias and group 1 when their epochs are over
        order = torch.randperm(n, device=device, generator=generator)
        losses, correct, seen = [], 0, 0
        for i in range(steps_per_epoch):
            idx = order[i * bs:(i + 1) * bs]
            x = random_crop(normalize(train_x[idx], mean, std), HYP["crop_padding"], generator)
            x = flip(x, flip_first[idx] ^ (epoch % 2 == 0))
            y = train_y[idx]
            for group in optimizer.param_groups:  # linear from each group's own rate to zero
                group["lr"] = group["initial_lr"] * (1 - step / total_steps)
            with autocast():
                logits = model(x.contiguous(memory_format=torch.channels_last))
                loss = F.cross_entropy(logits.float(), y, label_smoothing=opt["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.detach())
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        seconds = time.perf_counter() - t0
        # Validated once, after the last epoch, on the plain images, as the preset does: it selects nothing.
        val = f"{accuracy(model, val_x, val_y, autocast, views=False):.2%}" \
            if epoch == args.epochs and len(val_y) else "-"
        print(f"{epoch:>5} {torch.stack(losses).mean().item():>10.4f} {int(correct) / seen:>9.2%} {val:>7} "
              f"{optimizer.param_groups[0]['lr']:>8.2e} {seconds:>8.1f} {seen / seconds:>7.0f}")

    test_acc = accuracy(model, test_x, test_y, autocast, views=True)
    print(f"test accuracy {test_acc:.2%} (six views, {len(test_y):,} images)")
    return model, test_acc


if __name__ == "__main__":
    main()
