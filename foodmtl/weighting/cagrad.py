"""CAGrad: conflict-averse gradient descent (Liu et al., NeurIPS 2021, Algorithm 1).

With g_0 the mean gradient and phi = c^2 ||g_0||^2, the paper's dual problem

    w* = argmin_{w in simplex} g_w . g_0 + sqrt(phi) ||g_w||,   g_w = sum_i w_i g_i,

is solved on the Gram matrix with scipy's SLSQP from the uniform start, as in
the official code; the update is d = g_0 + (sqrt(phi) / ||g_w*||) g_w*, divided
by 1 + c^2 (``rescale=1``, official default), 1 + c (2) or 1 (0). c = 0 is the
mean gradient.

Heads: each task's own unweighted gradient (official code; LibMTL).
Scale-equivariant (w* and the step size are scale-invariant; the Gram matrix is
normalised by the mean gradient norm before solving, as in the official code, so
the solver's tolerances do not depend on the loss scale): it composes with an
fp16 GradScaler.
DDP: run under ``no_sync()`` and average ``.grad`` afterwards (see gradients.py).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from foodmtl.weighting.gradients import GramWeighting
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("cagrad")
class CAGrad(GramWeighting):
    def __init__(self, tasks: list[str], c: float = 0.4, rescale: int = 1, rep_grad: bool = False):
        super().__init__(tasks, rep_grad)
        if not c >= 0:
            raise ValueError(f"cagrad: c={c} must be >= 0")
        if rescale not in (0, 1, 2):
            raise ValueError(f"cagrad: rescale={rescale} must be 0 (none), 1 (1 + c^2) or 2 (1 + c)")
        self.c, self.rescale = float(c), rescale

    def solve(self, tasks: list[str], gram: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        from scipy.optimize import minimize  # here: scipy.optimize costs every run's start ~0.2 s, CAGrad's only

        k = len(tasks)
        a = gram.numpy()
        a = a / np.mean(np.sqrt(np.diag(a) + 1e-4)) ** 2  # as the official code: w*, lam are scale-free
        mean = np.full(k, 1.0 / k)
        sqrt_phi = self.c * float(np.sqrt(max(a.mean(), 0.0)))  # c ||g_0||, ||g_0||^2 = mean(M)

        def dual(w: np.ndarray) -> float:
            return float(w @ a @ mean + sqrt_phi * np.sqrt(w @ a @ w + 1e-8))

        w = minimize(dual, mean, bounds=[(0.0, 1.0)] * k,
                     constraints={"type": "eq", "fun": lambda w: 1.0 - w.sum()}).x
        lam = sqrt_phi / (np.sqrt(max(w @ a @ w, 0.0)) + 1e-8)
        divisor = (1.0, 1.0 + self.c**2, 1.0 + self.c)[self.rescale]
        coeffs = torch.from_numpy((mean + lam * w) / divisor)
        return coeffs, torch.ones(k, dtype=gram.dtype)
