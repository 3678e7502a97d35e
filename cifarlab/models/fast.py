"""The ``fast`` family: airbench94_muon's network, designed for time to accuracy.

A frozen 2x2 patch-whitening convolution (initialised from the training images' patch covariance, so the first
layer starts decorrelated instead of learning it), then three groups of [conv, max-pool, BN, GELU, conv, BN,
GELU], a global max-pool and a bias-free linear head. As in the speed run: each conv starts as an identity on
its first input channels (a residual path without the residual's cost), BatchNorm learns only its shift, and
the head's weights start at unit scale with its logits divided by its width. One knob, ``width``, scales every
group: ``width=1`` is airbench's 64-256-256; ``widths`` sets the three apart.

Training can freeze the early layers once they have settled, as FreezeOut (Brock et al., 2017) does:
``whiten_bias_epochs`` and ``group_epochs`` say for how many epochs the whitening bias and each group train.
A frozen layer needs no weight gradient, and nothing before the first trainable layer needs an input gradient,
so its epochs cost less: on a 2-core CPU the 16-96-96 network's step costs 0.58 of itself with group 1 frozen.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated

import torch
import torch.nn as nn
import torch.nn.functional as F

from cifarlab.errors import ModelError
from cifarlab.models.registry import register_model
from cifarlab.schema import NON_NEGATIVE, POSITIVE, length

_THREE_WIDTHS = length(3, "list three channel counts, one per group")
_THREE_EPOCHS = length(3, "list three numbers of epochs or nulls, one per group")


def _conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:cin])  # the first cin filters pass their input channel through
    return conv


def _norm(channels: int, momentum: float) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=momentum)
    norm.weight.requires_grad_(False)  # the scale stays 1: the next conv can absorb it
    return norm


def _group(cin: int, cout: int, bn_momentum: float) -> nn.Sequential:
    """conv -> maxpool(2) -> BN -> GELU -> conv -> BN -> GELU."""
    return nn.Sequential(_conv(cin, cout), nn.MaxPool2d(2), _norm(cout, bn_momentum), nn.GELU(),
                         _conv(cout, cout), _norm(cout, bn_momentum), nn.GELU())


@register_model("fast")
class FastNet(nn.Module):
    """Whitening stem, three conv groups, global max-pool, scaled linear head; ``width`` scales 64-256-256."""

    def __init__(self, width: Annotated[float, POSITIVE] = 1.0, num_classes: Annotated[int, POSITIVE] = 10,
                 bn_momentum: float = 0.4, whiten_bias_epochs: Annotated[int, NON_NEGATIVE] | None = None,
                 widths: Annotated[list[Annotated[int, POSITIVE]], _THREE_WIDTHS] | None = None,
                 group_epochs: Annotated[list[Annotated[int, NON_NEGATIVE] | None], _THREE_EPOCHS] | None = None):
        super().__init__()
        if widths is not None and width != 1.0:
            raise ModelError(f"model 'fast': give width ({width!r}) or widths ({widths!r}), not both")
        self.whiten_bias_epochs = whiten_bias_epochs
        self.group_epochs = group_epochs or [None] * 3
        widths = [24] + (list(widths) if widths is not None  # 24: the whitening filters
                         else [max(8, round(w * width)) for w in (64, 256, 256)])
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        self.groups = nn.Sequential(*(_group(cin, cout, bn_momentum) for cin, cout in pairwise(widths)))
        self.pool = nn.AdaptiveMaxPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.head = nn.Linear(widths[-1], num_classes, bias=False)
        with torch.no_grad():
            self.head.weight.div_(self.head.weight.std())
        self.logit_scale = 1 / widths[-1]

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalised training images ``(N, 3, H, W)``.

        The 12 eigenvectors of the 2x2-patch covariance, scaled by 1/sqrt(eigenvalue),
        and their negatives: 24 filters whose outputs are decorrelated with unit variance.
        """
        patches = F.unfold(images.float(), 2).transpose(1, 2).reshape(-1, 12)
        patches = patches - patches.mean(0)
        cov = patches.T @ patches / len(patches)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        filters = (eigvecs.T / torch.sqrt(eigvals + eps)[:, None]).reshape(12, 3, 2, 2)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight))
        self.whiten.bias.zero_()

    def start_epoch(self, epoch: int) -> None:
        """Train the whitening bias in epochs ``1..whiten_bias_epochs`` and group ``i`` in ``1..group_epochs[i]``
        (None: every epoch), as the speed run does for the bias.

        With the bias frozen, nothing before the first conv needs a gradient, so backward skips that conv's
        input gradient and the first GELU's, the largest activations: 14% more images/s in fp32 on 2 cores.
        """
        self.whiten.bias.requires_grad_(self.whiten_bias_epochs is None or epoch <= self.whiten_bias_epochs)
        for group, epochs in zip(self.groups, self.group_epochs):
            for name, param in group.named_parameters():
                if param.ndim == 4 or name.endswith("bias"):  # the BN scales stay frozen from the start
                    param.requires_grad_(epochs is None or epoch <= epochs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.act(self.whiten(x)))
        return self.head(self.flatten(self.pool(x))) * self.logit_scale

