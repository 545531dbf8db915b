"""Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Each task t learns s_t = log sigma_t^2. The paper's per-task objective depends on the task's
likelihood (its Eq. 7 for one regression and one classification task):

    regression (Gaussian likelihood):         L = 1/2 * exp(-s_t) * L_t + s_t / 2
    classification (softmax with temperature): L =       exp(-s_t) * L_t + s_t / 2

so a regression task's weight is exp(-s_t)/2 and a classification (or per-pixel
classification) task's exp(-s_t); each task's likelihood comes from its kind (``TaskKind.likelihood``,
passed by ``build_weighting``; a task of unknown likelihood is treated as classification). The reported weight is
that factor. s_t starts at ``init`` (0: weight 1, or 1/2 for regression). An absent task
contributes nothing, so its s_t receives no gradient from that batch.
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

    def likelihood_factor(self, task: str) -> float:
        """1/2 for a Gaussian (regression) likelihood, 1 for a softmax (classification) one."""
        return 0.5 if self.likelihoods.get(task) == "gaussian" else 1.0

    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        terms, weights = [], {}
        for task, loss in losses.items():
            s, factor = self.log_vars[task], self.likelihood_factor(task)
            terms.append(factor * torch.exp(-s) * loss + 0.5 * s)
            weights[task] = factor * torch.exp(-s.detach())
        return WeightedLoss(torch.stack(terms).sum(), weights)
