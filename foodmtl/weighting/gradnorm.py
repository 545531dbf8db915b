"""GradNorm (Chen et al., ICML 2018, Algorithm 1).

Learnable weights w_i (init 1). Each step, with G_i = ||grad_W w_i L_i||
(W = the last shared layer: the last parameter of ``shared`` with >= 2 dims,
i.e. the final conv/linear weight of a timm backbone; or the representation
with ``rep_grad=True``), G_avg their mean, L~_i = L_i / L_i(0) and
r_i = L~_i / mean(L~):

    L_grad = sum_i | G_i - G_avg r_i^alpha |      (the target is held constant)

gives grad w_i = sign(G_i - target_i) ||grad_W L_i||, which is left in
``w_i.grad`` for the trainer's optimizer (the weights sit in their own group).
The model gets grad of sum_i w_i L_i (heads: w_i grad L_i). ``update`` (after
the optimizer step) renormalises the weights so that they sum to K (paper):
the present tasks' weights are rescaled to the sum they had before the step,
so absent tasks' weights never move (a weight pushed to <= 0 is clamped to
1e-6 first). L_i(0) is each task's first seen loss (a buffer; rank 0's under DDP).

Not scale-equivariant (the w gradient grows with the loss scale): pass unscaled
losses (bf16 autocast, or fp32), or unscale them first.
DDP: run under ``no_sync()`` and average ``.grad`` (w included) afterwards.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from foodmtl.weighting.base import WeightingStrategy
from foodmtl.weighting.gradients import task_gradients
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("gradnorm")
class GradNorm(WeightingStrategy):
    scale_equivariant = False
    gradient_based = True

    def __init__(self, tasks: list[str], alpha: float = 1.5, rep_grad: bool = False):
        super().__init__(tasks)
        if not alpha >= 0:
            raise ValueError(f"gradnorm: alpha={alpha} must be >= 0")
        if not isinstance(rep_grad, bool):
            raise ValueError(f"gradnorm: rep_grad={rep_grad!r} must be true or false")
        self.alpha, self.rep_grad = float(alpha), rep_grad
        self.weights = nn.ParameterDict({t: nn.Parameter(torch.ones(())) for t in tasks})
        self.register_buffer("initial_losses", torch.full((len(tasks),), float("nan")))
        self._pending: tuple[list[str], float] | None = None  # (tasks, weight sum) to renormalise

    def backward(
        self,
        losses: dict[str, Tensor],
        shared: Sequence[nn.Parameter],
        representation: Tensor | None = None,
    ) -> dict[str, Tensor | float]:
        self._check(losses)
        tasks = list(losses)
        weights = torch.stack([self.weights[t] for t in tasks])
        norms = task_gradients(list(losses.values()), [self._layer(shared, representation)]).norm(dim=1)
        target = self._target(tasks, losses, weights.detach() * norms)
        grad_w = torch.sign(weights.detach() * norms - target) * norms  # d L_grad / d w_i
        for t, g in zip(tasks, grad_w):
            p = self.weights[t]
            p.grad = g.to(p) if p.grad is None else p.grad + g.to(p)
        torch.stack([w * loss for w, loss in zip(weights.detach(), losses.values())]).sum().backward()
        self._pending = (tasks, float(weights.detach().sum()))
        return dict(zip(tasks, weights.detach().tolist()))

    def update(self, losses: dict[str, Tensor]) -> None:
        if self._pending is None:
            return
        tasks, total = self._pending
        with torch.no_grad():
            present = torch.stack([self.weights[t] for t in tasks]).clamp_min(1e-6)  # keep w > 0
            for t, w in zip(tasks, present * (total / present.sum())):
                self.weights[t].copy_(w)
        self._pending = None

    def _layer(self, shared: Sequence[nn.Parameter], representation: Tensor | None) -> Tensor:
        if self.rep_grad and representation is not None:
            return representation
        layers = [p for p in shared if p.requires_grad and p.ndim >= 2]
        if not layers:
            raise ValueError("gradnorm: no shared weight with >= 2 dims to measure gradient norms on")
        return layers[-1]

    def _target(self, tasks: list[str], losses: dict[str, Tensor], grad_norms: Tensor) -> Tensor:
        """G_avg * r_i^alpha, with L_i(0) recorded on each task's first step."""
        index = torch.tensor([self.tasks.index(t) for t in tasks], device=self.initial_losses.device)
        values = torch.stack([loss.detach() for loss in losses.values()]).to(self.initial_losses)
        initial = self.initial_losses[index]
        self.initial_losses[index] = torch.where(torch.isnan(initial), values, initial)
        ratios = values / self.initial_losses[index].clamp_min(1e-12)
        r = (ratios / ratios.mean()).to(grad_norms)
        return grad_norms.mean() * r ** self.alpha
