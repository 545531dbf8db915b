"""Manual weighting: fixed per-task weights from the config (default 1)."""
from __future__ import annotations

from torch import Tensor

from foodmtl.utils.registry import unknown_name_error
from foodmtl.weighting.base import WeightedLoss, WeightingStrategy, weighted_sum
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("manual")
class Manual(WeightingStrategy):
    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None):
        super().__init__(tasks)
        weights = dict(weights or {})
        for task, value in weights.items():
            if task not in tasks:
                raise unknown_name_error("task in weighting.weights", task, tasks)
            if not value >= 0:
                raise ValueError(f"weighting.weights.{task}={value}: weights must be >= 0")
        self.weights = {t: float(weights.get(t, 1.0)) for t in tasks}

    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        return weighted_sum(losses, self.weights)
