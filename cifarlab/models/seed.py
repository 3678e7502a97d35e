"""The seed network: the student write-up's CNN, layer for layer.

Five 3x3 convolutions (the second with stride 2), each followed by ReLU then
BatchNorm, dropout before the fifth, a fixed 2x2 adaptive average pool and three
linear layers. 2,753,546 trainable parameters. ``nn.Flatten`` (not ``view``)
keeps the ONNX export free of Shape/Gather/Reshape chains that older MATLAB
importers reject.
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn as nn

from cifarlab.models.registry import register_model


@register_model("seed")
class SeedNet(nn.Sequential):
    """The write-up's CNN as one flat ``nn.Sequential``; ``dropout=0`` or ``batchnorm=False`` give its ablations."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.2, batchnorm: bool = True):
        layers: list[tuple[str, nn.Module]] = []
        widths = [(3, 32, 1), (32, 64, 2), (64, 128, 1), (128, 256, 1), (256, 512, 1)]
        for i, (cin, cout, stride) in enumerate(widths, start=1):
            if i == 5 and dropout > 0:
                layers.append(("dropout", nn.Dropout(dropout)))
            layers.append((f"conv{i}", nn.Conv2d(cin, cout, 3, stride=stride, padding=1)))
            layers.append((f"relu{i}", nn.ReLU(inplace=True)))
            if batchnorm:
                layers.append((f"bn{i}", nn.BatchNorm2d(cout)))
        layers += [("pool", nn.AdaptiveAvgPool2d((2, 2))), ("flatten", nn.Flatten()),
                   ("fc1", nn.Linear(512 * 2 * 2, 512)), ("relu_fc1", nn.ReLU(inplace=True)),
                   ("fc2", nn.Linear(512, 256)), ("relu_fc2", nn.ReLU(inplace=True)),
                   ("fc3", nn.Linear(256, num_classes))]
        super().__init__(OrderedDict(layers))

