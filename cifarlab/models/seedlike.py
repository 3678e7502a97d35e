"""``seedlike``: the seed network's family, grown or shrunk along its own pattern; ``seed`` is ``seedlike(5, 3)``.

The seed is the student write-up's CNN: five 3x3 convolutions (the second with stride 2), each followed by ReLU
then BatchNorm, dropout before the fifth, a fixed 2x2 adaptive average pool and three linear layers; 2,753,546
trainable parameters. ``create_model("seed", dropout=0)`` and ``batchnorm=False`` give its ablations. Growth rule:

* conv layer ``i`` (1-based) has ``min(width * 2**(i-1), 512) // divisor`` output channels (``divisor`` shrinks every
  conv layer alike, the 512 cap included, as a laptop-scale screen does), a 3x3 kernel with padding 1,
  stride 2 at conv 2 only (so 32x32 inputs stay at 16x16 from conv 2 on, however many conv layers there are),
  then ReLU, then BatchNorm (when ``batchnorm``). Names ``conv{i}``, ``relu{i}``, ``bn{i}``.
* ``dropout`` (when > 0) sits right before the last conv layer, named ``dropout``.
* then ``pool`` (adaptive average pool to 2x2) and ``flatten`` (``nn.Flatten``, not ``view``: it keeps the ONNX
  export free of the Shape/Gather/Reshape chains that older MATLAB importers reject).
* ``fc`` linear layers: the first takes ``last_channels * 4`` features; hidden layer ``j`` has
  ``max(512 // 2**(j-1), 16)`` outputs (512, 256, 128, ...), each followed by ``relu_fc{j}``; the last maps to
  ``num_classes``. Names ``fc{j}``.
"""

from __future__ import annotations

import functools
from typing import Annotated

import torch.nn as nn

from cifarlab.models.declarative import build_from_layers
from cifarlab.models.registry import register_model
from cifarlab.schema import FRACTION, POSITIVE

Count = Annotated[int, POSITIVE]


@register_model("seedlike")
def seedlike(conv: Count = 5, fc: Count = 3, width: Count = 32, dropout: Annotated[float, FRACTION] = 0.2,
             batchnorm: bool = True, num_classes: Count = 10, divisor: Count = 1) -> nn.Sequential:
    """The seed's pattern with ``conv`` conv layers and ``fc`` linear layers (see the module doc)."""
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
    return build_from_layers(layers)


register_model("seed")(functools.partial(seedlike, 5, 3))
