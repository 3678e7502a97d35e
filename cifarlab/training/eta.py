"""What training tells the user about time: the expected total, early, and corrected after an epoch.

The trainer measures images/s over the first few batches (after the first,
which pays for warm-up and compiling), prints the expected training time, and
prints it again, corrected, from the first whole epoch (validation included).
A recipe that will take hours on a CPU says so at once and names the preset
that reaches the same accuracy in minutes.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from cifarlab.formatting import duration

# Presets whose accuracy a faster CPU preset matches: name -> the advice. fast-cpu: 84.27% mean
# test accuracy in 81 s on a 2-core CPU (docs/training.md), the seed write-up's best being 84%.
FASTER_ON_CPU = {
    "seed": "fast-cpu reaches the write-up's 84% test accuracy in about 2 minutes on 2 CPU cores: "
            "cifarlab train --preset fast-cpu",
    "seed-best": "fast-cpu reaches this recipe's 84% test accuracy in about 2 minutes on 2 CPU cores: "
                 "cifarlab train --preset fast-cpu",
}
_LONG_ON_CPU = 30 * 60  # seconds: beyond this, a CPU run with a faster equivalent says so
_MIN_BATCHES, _MIN_SECONDS, _MAX_BATCHES = 2, 1.0, 50  # the first estimate's measuring window, after batch 1


class EtaClock:
    """Turns timings of this session's batches and epochs into the expected-time lines.

    ``epochs`` is the number of epochs still to train, ``images_per_epoch`` what
    one epoch feeds the model, ``sides`` the training image side of each of those
    epochs where they differ (``train.resolution``; empty: all alike). Call
    :meth:`batch` after each batch of the first epoch (it returns the first
    estimate once) and :meth:`epoch` after the first epoch (it returns the correction).
    """

    def __init__(self, epochs: int, images_per_epoch: int, *, preset: str, on_cpu: bool,
                 sides: Sequence[int] = ()):
        self.epochs, self.images_per_epoch = epochs, images_per_epoch
        self.preset, self.on_cpu = preset, on_cpu
        self.sides = list(sides)
        self.warm: tuple[int, float] | None = None  # (images, seconds) at the end of batch 1
        self.estimated = False

    def batch(self, batches: int, images: int, seconds: float) -> str | None:
        """The first estimate, once enough batches are measured; all three count from this session's first batch."""
        if self.estimated:
            return None
        if self.warm is None:
            self.warm = (images, seconds)
            return None
        measured_images, measured_seconds = images - self.warm[0], seconds - self.warm[1]
        enough = batches - 1 >= _MIN_BATCHES and measured_seconds >= _MIN_SECONDS
        if not (enough or batches - 1 >= _MAX_BATCHES or images >= self.images_per_epoch) or measured_seconds <= 0:
            return None
        self.estimated = True
        rate = measured_images / measured_seconds
        total = self.epochs * self.images_per_epoch / rate
        return (f"expected training time: about {duration(total)} ({self.epochs} epoch{'s' * (self.epochs != 1)} x "
                f"{self.images_per_epoch:,} images at {rate:,.0f} images/s, measured over batches 2-{batches}; "
                f"validation adds to it)") + self._advice(total)

    def epoch(self, done: int, seconds: float) -> str | None:
        """After this session's first epoch (``seconds`` with any validation): the corrected total and end time.

        Each epoch is expected to cost the measured one's ``seconds`` times its pixels per image relative to it.
        """
        if done != 1:
            return None
        # Progressive resizing: an epoch at half the side has a quarter of the pixels to push through the network.
        total = seconds * (sum((side / self.sides[0]) ** 2 for side in self.sides) if self.sides else self.epochs)
        if not self.estimated:  # an epoch too short to measure batches in: the epoch is the measurement
            self.estimated = True
            return f"expected training time: about {duration(total)} ({duration(seconds)} for the first epoch)" \
                + self._advice(total)
        if self.epochs <= 1:
            return None
        left = total - seconds
        finish = dt.datetime.now() + dt.timedelta(seconds=left)
        return (f"after the first epoch ({duration(seconds)} with its evaluation): about {duration(total)} in all, "
                f"{duration(left)} to go, done around {finish:%H:%M}")

    def _advice(self, total: float) -> str:
        advice = FASTER_ON_CPU.get(self.preset)
        return f"\nthat is a long wait on a CPU: {advice}" if self.on_cpu and advice and total >= _LONG_ON_CPU else ""
