"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, the MTAN paper).

    lambda_k(t) = K exp(r_k(t-1) / T) / sum_i exp(r_i(t-1) / T),
    r_k(t-1) = L_k(t-1) / L_k(t-2)

over epoch-average training losses; weights are 1 until two epochs are known.
``update`` accumulates each step's losses and ``end_epoch`` turns them into an
epoch average; the weights are derived from the last two averages, so a
task's weight does not depend on which tasks are in the batch. A task absent
for a whole epoch keeps its two averages (its ratio refers to its last two
epochs with labels). Tasks without two averages keep weight 1 and the K' others
share K' softmax(r / T). History and running sums are buffers (checkpoints,
mid-epoch resume); under DDP (broadcast_buffers, the default) they follow
rank 0, i.e. rank 0's losses, unless the caller passes rank-averaged ones.
"""
from __future__ import annotations

import torch
from torch import Tensor

from foodmtl.weighting.base import WeightedLoss, WeightingStrategy, weighted_sum
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("dwa")
class DWA(WeightingStrategy):
    def __init__(self, tasks: list[str], T: float = 2.0):
        super().__init__(tasks)
        if not T > 0:
            raise ValueError(f"dwa: T={T} must be > 0")
        self.T = float(T)
        k = len(tasks)
        self.register_buffer("epoch_sum", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("epoch_count", torch.zeros(k, dtype=torch.long))
        # rows: epoch averages L(t-2), L(t-1); NaN until a task has them
        self.register_buffer("history", torch.full((2, k), float("nan"), dtype=torch.float64))

    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        weights = self.weights()
        return weighted_sum(losses, {t: float(weights[self.tasks.index(t)]) for t in losses})

    def weights(self) -> Tensor:
        """Every task's weight for the current epoch (1 without two epoch averages)."""
        known = ~torch.isnan(self.history).any(0) & (self.history[0] > 0)
        weights = torch.ones(len(self.tasks), dtype=self.history.dtype, device=self.history.device)
        if known.any():
            ratios = self.history[1, known] / self.history[0, known]
            weights[known] = int(known.sum()) * torch.softmax(ratios / self.T, dim=0)
        return weights

    def update(self, losses: dict[str, Tensor]) -> None:
        for task, loss in losses.items():
            i = self.tasks.index(task)
            self.epoch_sum[i] += float(loss)
            self.epoch_count[i] += 1

    def end_epoch(self) -> None:
        seen = self.epoch_count > 0
        self.history[0, seen] = self.history[1, seen]
        self.history[1, seen] = self.epoch_sum[seen] / self.epoch_count[seen]
        self.epoch_sum.zero_()
        self.epoch_count.zero_()
