"""Uniform weighting: every present task has weight 1."""
from __future__ import annotations

from torch import Tensor

from foodmtl.weighting.base import WeightedLoss, WeightingStrategy, weighted_sum
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("uniform")
class Uniform(WeightingStrategy):
    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        return weighted_sum(losses, {t: 1.0 for t in losses})
