"""Regression metrics in original units: MAE and MAE as a percentage of the mean true value.

Nutrition5k (Thames et al., CVPR 2021) reports both for mass, calories and macronutrients. The
metric keeps three float64 sums (absolute error, target, count) that torchmetrics adds over DDP
ranks, so every labelled image counts once whatever the sharding.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torchmetrics import Metric


class RegressionMetrics(Metric):
    """``update(output, target)`` with labelled samples only; ``compute() -> {"mae", "mae_pct"}``."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    def __init__(self, to_units: Callable[[Tensor], Tensor] = lambda output: output.squeeze(-1), **kwargs):
        super().__init__(**kwargs)
        self.to_units = to_units
        for name in ("abs_error", "target_sum", "count"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, output: Tensor, target: Tensor) -> None:
        target = target.double()
        self.abs_error += (self.to_units(output).double() - target).abs().sum()
        self.target_sum += target.sum()
        self.count += len(target)

    def compute(self) -> dict[str, Tensor]:
        mae = self.abs_error / self.count
        return {"mae": mae.float(), "mae_pct": (100 * mae * self.count / self.target_sum).float()}
