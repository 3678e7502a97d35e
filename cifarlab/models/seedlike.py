"""``seedlike``: the seed network's family, grown or shrunk along its own pattern.

Growth rule (``seedlike(conv=5, fc=3)`` is the seed exactly: same layer names, same shapes, interchangeable
state_dict, same outputs):

* conv layer ``i`` (1-based) has ``min(width * 2**(i-1), 512) // divisor`` output channels (``divisor`` shrinks every
  conv layer alike, the 512 cap included, as a laptop-scale screen does), a 3x3 kernel with padding 1,
  stride 2 at conv 2 only (so 32x32 inputs stay at 16x16 from conv 2 on, however many conv layers there are),
  then ReLU, then BatchNorm (when ``batchnorm``). Names ``conv{i}``, ``relu{i}``, ``bn{i}``.
* ``dropout`` (when > 0) sits right before the last conv layer, named ``dropout``.
* then ``pool`` (adaptive average pool to 2x2) and ``flatten``.
* ``fc`` linear layers: the first takes ``last_channels * 4`` features; hidden layer ``j`` has
  ``max(512 // 2**(j-1), 16)`` outputs (512, 256, 128, ...), each followed by ``relu_fc{j}``; the last maps to
  ``num_classes``. Names ``fc{j}``.
"""

from __future__ import annotations

import torch.nn as nn

from cifarlab.errors import ModelError
from cifarlab.models.declarative import build_from_layers
from cifarlab.models.registry import register_model


def seedlike_layers(conv: int = 5, fc: int = 3, width: int = 32, dropout: float = 0.2,
                    batchnorm: bool = True, num_classes: int = 10, divisor: int = 1) -> list:
    """The layer list (declarative syntax) of ``seedlike(...)``."""
    for key, value, lo in (("conv", conv, 1), ("fc", fc, 1), ("width", width, 1), ("num_classes", num_classes, 1),
                           ("divisor", divisor, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ModelError(f"model 'seedlike': {key} must be an integer >= {lo}, got {value!r}")
    if not 0 <= dropout < 1:
        raise ModelError(f"model 'seedlike': dropout must be in [0, 1), got {dropout!r}")
    layers: list = []
    for i in range(1, conv + 1):
        if i == conv and dropout > 0:
            layers.append({"dropout": {"p": dropout}, "name": "dropout"})
        out = max(1, min(width * 2 ** (i - 1), 512) // divisor)
        layers.append({"conv": {"out": out, "kernel": 3, "stride": 2 if i == 2 else 1, "padding": 1},
                       "name": f"conv{i}"})
        layers.append({"relu": {}, "name": f"relu{i}"})
        if batchnorm:
            layers.append({"batchnorm": {}, "name": f"bn{i}"})
    layers.append({"adaptiveavgpool": {"size": [2, 2]}, "name": "pool"})
    layers.append({"flatten": {}, "name": "flatten"})
    for j in range(1, fc):
        layers.append({"linear": {"out": max(512 // 2 ** (j - 1), 16)}, "name": f"fc{j}"})
        layers.append({"relu": {}, "name": f"relu_fc{j}"})
    layers.append({"linear": {"out": num_classes}, "name": f"fc{fc}"})
    return layers


@register_model("seedlike")
def seedlike(conv: int = 5, fc: int = 3, width: int = 32, dropout: float = 0.2, batchnorm: bool = True,
             num_classes: int = 10, divisor: int = 1) -> nn.Module:
    """The seed's pattern with ``conv`` conv layers and ``fc`` linear layers (see the module doc)."""
    return build_from_layers(seedlike_layers(conv, fc, width, dropout, batchnorm, num_classes, divisor))
