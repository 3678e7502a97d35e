"""Training throughput: the seed's per-sample DataLoader pipeline vs. cifarlab's device-resident path.

Measured side by side in one run, same network (the seed CNN), same batch size (60):
  (a) a map-style Dataset converting one PIL image at a time to a tensor and
      normalising it, DataLoader(batch 60, shuffle, 2 workers): the seed's pipeline;
  (b) cifarlab's DeviceLoader: uint8 tensor resident on the device, batch-wise
      normalisation.
and the data path alone (no network): (b)'s loader vs. (a)'s DataLoader.

    python benchmarks/throughput.py --data ../shared/data/cifar10-jpeg.tar.gz
    python benchmarks/throughput.py --quick      # CI: a few batches of random images
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_images, machine  # noqa: E402

from cifarlab.data.loader import DeviceLoader, to_device_images  # noqa: E402
from cifarlab.models import create_model  # noqa: E402

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


class PerSampleDataset(torch.utils.data.Dataset):
    """What ``torchvision.datasets.CIFAR10`` + ToTensor + Normalize do, one image at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i])
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
        return (x - self.mean) / self.std, int(self.labels[i])


def timed_images_per_s(batches, steps: int, step_fn=None) -> float:
    """Images/s over ``steps`` batches after one warm-up batch."""
    it = iter(batches)
    x, y = next(it)
    if step_fn:
        step_fn(x, y)
    count, t0 = 0, time.perf_counter()
    for _ in range(steps):
        x, y = next(it)
        if step_fn:
            step_fn(x, y)
        count += len(y)
    return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="dataset path (default: random synthetic images)")
    parser.add_argument("--steps", type=int, default=60, help="timed training batches per pipeline")
    parser.add_argument("--quick", action="store_true", help="a few batches, for CI")
    args = parser.parse_args()
    steps = 3 if args.quick else args.steps
    n = max(2000, 60 * (steps + 2) * 4)
    images, labels, source = load_images(args.data, n)
    torch.manual_seed(0)
    model = create_model("seed")
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)

    def train_step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    dataloader = torch.utils.data.DataLoader(PerSampleDataset(images, labels), batch_size=60, shuffle=True,
                                             num_workers=2, persistent_workers=True)
    device_loader = DeviceLoader(to_device_images(images, "cpu"),
                                 torch.from_numpy(labels), 60, mean=MEAN, std=STD, shuffle=True)
    train_a = timed_images_per_s(dataloader, steps, train_step)
    train_b = timed_images_per_s(device_loader, steps, train_step)
    data_steps = min(len(device_loader) - 2, steps * 20)
    data_a = timed_images_per_s(dataloader, data_steps)
    data_b = timed_images_per_s(device_loader, data_steps)

    print(f"machine: {machine()}")
    print(f"data: {source}; seed CNN, batch 60, Adam; {steps} timed training batches, {data_steps} data-only batches")
    print(f"{'pipeline':<64}{'images/s':>10}")
    print(f"{'(a) seed training, per-sample Dataset + DataLoader(2 workers)':<64}{train_a:>10.1f}")
    print(f"{'(b) seed training, cifarlab device-resident loader':<64}{train_b:>10.1f}")
    print(f"{'data path alone, per-sample DataLoader(2 workers)':<64}{data_a:>10.0f}")
    print(f"{'data path alone, cifarlab device-resident loader':<64}{data_b:>10.0f}")
    print(f"ratio training (b)/(a): {train_b / train_a:.2f}x   ratio data path: {data_b / data_a:.1f}x")


if __name__ == "__main__":
    main()
