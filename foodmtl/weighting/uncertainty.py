"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Each task t learns s_t = log sigma_t^2. For a classification (softmax or
sigmoid) likelihood with temperature sigma^2 the paper's objective is, per task,

    L = exp(-s_t) * L_t + s_t / 2

(the paper's regression form halves the first term; all our tasks are
classification or per-pixel classification). exp(-s_t) is the reported weight.
s_t starts at ``init`` (0 -> weight 1). An absent task contributes nothing, so
its s_t receives no gradient from that batch.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from foodmtl.weighting.base import WeightedLoss, WeightingStrategy
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("uncertainty")
class Uncertainty(WeightingStrategy):
    def __init__(self, tasks: list[str], init: float = 0.0):
        super().__init__(tasks)
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.tensor(float(init))) for t in tasks})

    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        terms, weights = [], {}
        for task, loss in losses.items():
            s = self.log_vars[task]
            terms.append(torch.exp(-s) * loss + 0.5 * s)
            weights[task] = torch.exp(-s.detach())
        return WeightedLoss(torch.stack(terms).sum(), weights)
