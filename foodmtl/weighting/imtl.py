"""IMTL: impartial multi-task learning (Liu et al., ICLR 2021).

IMTL-G: the combined gradient g = sum_t alpha_t g_t, sum alpha = 1,
has equal projections onto every unit gradient u_t. The paper's closed form
alpha_{2:K} = g_1 U^T (D U^T)^{-1} (D rows g_1 - g_t, U rows u_1 - u_t) is the
same as the Gram form used here: g . u_t = (M alpha)_t / ||g_t|| equal for all t
gives alpha = M^+ n / (1^T M^+ n), n_t = ||g_t||; the pseudo-inverse (as in
TorchJD's IMTL-G) keeps linearly dependent gradients finite.

IMTL-L (``loss_balance=True``, with IMTL-G the paper's hybrid IMTL): each loss
becomes e^{s_t} L_t - s_t with a learnable s_t (init 0) trained by the main
optimizer; IMTL-G then runs on the scaled losses.

Heads: each task's own (scaled) gradient with weight 1 (LibMTL).
Scale-equivariant (alpha is scale-invariant); with IMTL-L the s_t gradient
e^{s_t} L_t - 1 is not, so pass unscaled losses (bf16, or fp32) when using it.
DDP: run under ``no_sync()`` and average ``.grad`` afterwards (see gradients.py).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from foodmtl.weighting.gradients import GramWeighting
from foodmtl.weighting.registry import WEIGHTINGS


@WEIGHTINGS.register("imtl")
class IMTL(GramWeighting):
    def __init__(self, tasks: list[str], loss_balance: bool = False, rep_grad: bool = False):
        super().__init__(tasks, rep_grad)
        if not isinstance(loss_balance, bool):
            raise ValueError(f"imtl: loss_balance={loss_balance!r} must be true or false")
        self.loss_scales = nn.ParameterDict(
            {t: nn.Parameter(torch.zeros(())) for t in tasks} if loss_balance else {})

    def backward(self, losses: dict[str, Tensor], shared: Sequence[nn.Parameter],
                 representation: Tensor | None = None) -> dict[str, Tensor | float]:
        self._check(losses)
        if self.loss_scales:
            losses = {t: torch.exp(self.loss_scales[t]) * loss - self.loss_scales[t]
                      for t, loss in losses.items()}
        return super().backward(losses, shared, representation)

    def solve(self, tasks: list[str], gram: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        v = torch.linalg.pinv(gram) @ gram.diagonal().clamp_min(0).sqrt()
        total = v.sum()
        alpha = v / total if total.abs() > 1e-12 else torch.zeros_like(v)
        return alpha, torch.ones_like(alpha)
