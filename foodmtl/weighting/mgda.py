"""MGDA-UB (Sener & Koltun, NeurIPS 2018: Algorithm 2 on the MGDA-UB upper bound).

alpha = argmin_{alpha in simplex} ||sum_t alpha_t g_t / n_t||^2, solved exactly
(Wolfe's min-norm-point algorithm, ``gradients.min_norm_weights``) on gradients
w.r.t. the shared representation Z (``rep_grad=True``, the paper's MGDA-UB;
``False`` takes them w.r.t. the shared parameters, i.e. plain MGDA). The
normaliser n_t follows the official code: "none" (1), "l2" (||g_t||), "loss"
(L_t), "loss+" (L_t ||g_t||). As in the official code the shared update is
sum_t alpha_t g_t of the *raw* gradients (LibMTL instead sums the normalised
ones; both agree for "none").

Solver: the official code and LibMTL run the paper's Frank-Wolfe for at most
250 iterations or until alpha moves < 1e-5 (TorchJD: 100, or a step < 1e-3),
which on ill-conditioned, conflicting problems can stop well above the min-norm
point, leaving tasks whose normalised gradient opposes the update. The exact solve guarantees
g_t/n_t . d >= ||d||^2 for every task (d the normalised combination; up to
rounding), and agrees with the references where their Frank-Wolfe has converged.

Heads: each task's own unweighted gradient (paper's Algorithm 2; LibMTL).
Scale-equivariant for every normalisation (alpha is scale-invariant), so it
composes with an fp16 GradScaler.
DDP: run under ``no_sync()`` and average ``.grad`` afterwards (see gradients.py).
"""
from __future__ import annotations

import torch
from torch import Tensor

from foodmtl.weighting.gradients import GramWeighting, min_norm_weights
from foodmtl.weighting.registry import WEIGHTINGS

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@WEIGHTINGS.register("mgda")
class MGDA(GramWeighting):
    def __init__(self, tasks: list[str], normalization: str = "none", rep_grad: bool = True):
        super().__init__(tasks, rep_grad)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"mgda: normalization={normalization!r} must be one of {NORMALIZATIONS}")
        self.normalization = normalization

    def solve(self, tasks: list[str], gram: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        norms = gram.diagonal().clamp_min(0).sqrt()
        n = {"none": torch.ones_like(losses), "l2": norms, "loss": losses, "loss+": losses * norms}
        scale = n[self.normalization].clamp_min(1e-12)  # a zero gradient stays zero
        alpha = min_norm_weights(gram / torch.outer(scale, scale))
        return alpha, torch.ones_like(alpha)
