"""PCGrad: project conflicting gradients (Yu et al., NeurIPS 2020, Algorithm 1).

For each task i, in a random order over the other tasks j:
if g_i^PC . g_j < 0, then g_i^PC <- g_i^PC - (g_i^PC . g_j / ||g_j||^2) g_j;
the shared gradient is sum_i g_i^PC. Every g_i^PC stays a linear combination of
the original gradients, so the projections run on the K x K Gram matrix and the
reported weight of task j is its total coefficient in the sum (as LibMTL logs).
The order is a fresh ``torch.randperm`` per task (seed torch for repeatability).

Heads: each task's own unweighted gradient (paper; LibMTL). Scale-equivariant
(projections are homogeneous), so it composes with an fp16 GradScaler.
DDP: run under ``no_sync()`` and average ``.grad`` afterwards (see gradients.py).
"""
from __future__ import annotations

import torch
from torch import Tensor

from foodmtl.weighting.gradients import GramWeighting
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("pcgrad")
class PCGrad(GramWeighting):
    def __init__(self, tasks: list[str], rep_grad: bool = False):
        super().__init__(tasks, rep_grad)

    def solve(self, tasks: list[str], gram: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        k = len(tasks)
        total = torch.zeros(k, dtype=gram.dtype)
        for i in range(k):
            coeffs = torch.zeros(k, dtype=gram.dtype)
            coeffs[i] = 1.0
            for j in torch.randperm(k).tolist():
                dot = coeffs @ gram[:, j]  # g_i^PC . g_j
                if j != i and dot < 0:
                    coeffs[j] -= dot / gram[j, j]
            total += coeffs
        return total, torch.ones(k, dtype=gram.dtype)
