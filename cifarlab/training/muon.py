"""Muon: momentum orthogonalised by Newton-Schulz, for convolution filters.

Muon (Keller Jordan, 2024; the optimizer of the airbench94_muon speed run)
replaces each conv filter bank's momentum ``M`` (reshaped to ``out x in*k*k``)
by an approximation of the nearest semi-orthogonal matrix ``U V^T`` of its
SVD ``U S V^T``, so every direction of the update moves at the same rate
however unevenly the gradient is spread over them, and keeps the filter
bank's norm fixed at ``sqrt(out)``. It needs far fewer epochs than SGD for
the same accuracy, at the cost of a few small matrix products per step.

Parameters that are not filter banks (biases, BatchNorm, the linear head) are
trained in the same optimizer with SGD-Nesterov: each param group says which
rule applies (``muon: True`` or ``False``).
"""

from __future__ import annotations

import torch

# Quintic Newton-Schulz coefficients chosen for the steepest slope at zero:
# three iterations take every singular value to somewhere near 1 (roughly
# 0.5 to 1.5) rather than exactly 1, which trains as well as an exact U V^T.
_NS_COEFFS = (3.4445, -4.7750, 2.0315)


def orthogonalize(g: torch.Tensor, steps: int = 3, eps: float = 1e-7) -> torch.Tensor:
    """Approximately ``U V^T`` for the 2-D matrix ``g = U S V^T`` (Newton-Schulz iteration)."""
    a, b, c = _NS_COEFFS
    x = g / (g.norm() + eps)  # every singular value <= 1, where the iteration converges
    tall = g.size(0) > g.size(1)
    if tall:  # iterate on the smaller Gram matrix
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon for the groups marked ``muon=True``, SGD with momentum for the others.

    Group options: ``lr``, ``momentum``, ``nesterov``, ``weight_decay`` and ``muon``.
    In a Muon group each step renormalises the filter bank to norm ``sqrt(out)``
    and moves it by ``lr`` times the orthogonalised (Nesterov) momentum, so
    ``lr`` is a step length and weight decay would have nothing to shrink. In
    an SGD group ``weight_decay`` is decoupled from the group's rate, as in the
    speed run: the decay term ``weight_decay / initial_lr * p`` joins the
    gradient, so at full rate it removes the fraction ``weight_decay`` of the
    weights per step in every group, however different their rates.
    """

    def __init__(self, param_groups: list[dict], lr: float = 0.1, momentum: float = 0.9, nesterov: bool = True,
                 weight_decay: float = 0.0):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, muon=False)
        super().__init__(param_groups, defaults)
        for group in self.param_groups:
            group.setdefault("initial_lr", group["lr"])

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] and not group["muon"]:
                    grad = grad.add(p, alpha=group["weight_decay"] / group["initial_lr"])
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(grad)
                update = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
                if group["muon"]:
                    p.mul_(len(p) ** 0.5 / p.norm())
                    p.add_(orthogonalize(update.reshape(len(p), -1)).view_as(p), alpha=-lr)
                else:
                    p.add_(update, alpha=-lr)
        return None
