"""Nash-MTL: multi-task learning as a bargaining game (Navon et al., ICML 2022).

The Nash bargaining solution is alpha > 0 with G G^T alpha = 1 / alpha (the
paper's condition; G rows are the task gradients). That is the stationarity
condition of the strictly convex f(a) = a^T M a / 2 - sum log a_t (M = G G^T),
so instead of the paper's CCP with cvxpy it is solved by damped Newton with a
backtracking line search that keeps a > 0 (quadratic convergence; the tests
check M alpha = 1 / alpha to 1e-7 relative and agree with TorchJD's CCP).
It runs on the correlation matrix (the official code divides M by its norm
instead), so very different gradient scales stay accurate; a 1e-12 ridge keeps
the solution finite when gradients are exactly opposed. A task whose shared
gradient is zero gets alpha = 1 (its head's plain gradient).

alpha is recomputed every ``update_every`` steps (1 = paper's default), and
whenever the set of present tasks changes. The shared update sum_t alpha_t g_t
is clipped to norm ``max_norm`` (official code; 0 disables); heads get
alpha_t grad L_t unclipped, as the official code back-propagates sum alpha_t L_t.
With ``rep_grad`` the clip applies to the representation gradient instead.

NOT scale-equivariant: scaling all losses by s scales alpha by 1/s, so the
update is scale-invariant and an fp16 GradScaler's unscale would shrink it.
Pass unscaled losses (bf16 autocast, or fp32).
DDP: run under ``no_sync()`` and average ``.grad`` afterwards (see gradients.py).
"""
from __future__ import annotations

import torch
from torch import Tensor

from foodmtl.weighting.gradients import GramWeighting
from foodmtl.weighting.registry import WEIGHTINGS


def nash_weights(gram: Tensor, ridge: float = 1e-12) -> Tensor:
    """alpha > 0 with M alpha = 1 / alpha for the tasks with a non-zero gradient (1 for the others).

    With D = diag(||g_t||), M = D C D and alpha = D^-1 beta turn the condition
    into C beta = 1 / beta on the unit-diagonal C, whatever the gradient scales.
    """
    norms = gram.diagonal().clamp_min(0).sqrt()
    active = norms > 1e-12 * norms.max()  # a zero gradient has no bargaining utility
    alpha = torch.ones_like(norms)
    if active.any():
        n = norms[active]
        corr = gram[active][:, active] / torch.outer(n, n)
        alpha[active] = _newton(corr + ridge * torch.eye(len(n), dtype=gram.dtype)) / n
    return alpha


def _newton(m: Tensor, tol: float = 1e-12, max_iter: int = 100) -> Tensor:
    """Damped Newton on f(b) = b^T M b / 2 - sum log b, whose minimiser has M b = 1 / b."""
    def f(b: Tensor) -> Tensor:
        return 0.5 * b @ m @ b - b.log().sum()

    beta = torch.ones(m.shape[0], dtype=m.dtype)  # exact for orthogonal gradients
    for _ in range(max_iter):
        grad = m @ beta - 1 / beta
        step = -torch.linalg.solve(m + torch.diag(beta ** -2), grad)
        decrement = -(grad @ step)  # Newton decrement squared
        beta = _backtrack(f, beta, step, decrement)
        if decrement < tol:  # that was a full step in the quadratic regime: converged
            break
    return beta


def _backtrack(f, alpha: Tensor, step: Tensor, decrement: Tensor) -> Tensor:
    """Armijo backtracking along ``step`` that stays in the positive orthant."""
    t, f0 = 1.0, f(alpha)
    for _ in range(60):
        new = alpha + t * step
        if bool((new > 0).all()) and f(new) <= f0 - 0.25 * t * decrement:
            return new
        t *= 0.5
    return alpha


@WEIGHTINGS.register("nashmtl")
class NashMTL(GramWeighting):
    scale_equivariant = False
    def __init__(self, tasks: list[str], update_every: int = 1, max_norm: float = 1.0,
                 rep_grad: bool = False):
        super().__init__(tasks, rep_grad)
        if not (isinstance(update_every, int) and update_every >= 1):
            raise ValueError(f"nashmtl: update_every={update_every!r} must be an integer >= 1")
        if not max_norm >= 0:
            raise ValueError(f"nashmtl: max_norm={max_norm} must be >= 0 (0 disables clipping)")
        self.update_every, self.max_norm = update_every, float(max_norm)
        self.register_buffer("alpha", torch.ones(len(tasks), dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._solved_for: list[str] = []  # not saved: a resumed run solves on its first step

    def solve(self, tasks: list[str], gram: Tensor, losses: Tensor) -> tuple[Tensor, Tensor]:
        index = torch.tensor([self.tasks.index(t) for t in tasks])
        if self.step % self.update_every == 0 or tasks != self._solved_for:
            self.alpha[index] = nash_weights(gram).to(self.alpha)
            self._solved_for = tasks
        self.step += 1
        alpha = self.alpha[index].cpu()
        norm = (alpha @ gram @ alpha).clamp_min(0).sqrt()  # ||G^T alpha||
        clip = self.max_norm / norm if 0 < self.max_norm < norm else 1.0
        return alpha * clip, alpha
