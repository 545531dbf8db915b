"""Random Loss Weighting (Lin et al., TMLR 2022, "Reasonable effectiveness of random weighting").

Each step the present tasks get lambda = softmax(z), z ~ N(0, I) (the paper's
normal-distribution variant), multiplied by the number of present tasks so that
the weights sum to K and the loss scale matches uniform weighting (the paper's
weights sum to 1, which only rescales the learning rate). Uses torch's global RNG.
"""
from __future__ import annotations

import torch
from torch import Tensor

from foodmtl.weighting.base import WeightedLoss, WeightingStrategy, weighted_sum
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("rlw")
class RLW(WeightingStrategy):
    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        weights = len(losses) * torch.softmax(torch.randn(len(losses)), dim=0)
        return weighted_sum(losses, dict(zip(losses, weights.tolist())))
