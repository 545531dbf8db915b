"""FAMO: fast adaptive multitask optimization (Liu et al., NeurIPS 2023, Algorithm 1).

Task logits w (init 0), z = softmax(w). The model minimises

    sum_i z_i log(L_i + eps) / c,   c = sum_i z_i / (L_i + eps)  (detached),

i.e. the effective weight of L_i is z_i / (c (L_i + eps)) (these sum to 1 and
are reported). After the optimizer step, ``update(new_losses)`` with the
losses of the *same batch* re-evaluated at the new parameters takes
delta_i = log(L_i + eps) - log(L_i' + eps) and moves w along
-(d z / d w)^T delta with Adam (lr ``lr``, L2 weight decay ``gamma``), as the
official code. This needs a no-grad re-forward of the batch (the trainer must
provide it: ``post_step_losses``); passing the pre-step losses gives delta = 0.

Absent tasks: z is a softmax over the present tasks only, and only their
logits and Adam moments move. w and the Adam state are buffers (not
parameters) so the trainer's optimizer never touches them and checkpoints
keep them. w, the Adam moments and the saved losses are float64, whatever the
losses' dtype: delta is a difference of logs of nearly equal losses, which
float32 (7 digits) would round to a few significant digits or to zero.
Losses must be >= 0 (eps = 1e-8, official min_losses = 0).
The official code also clips the shared gradient norm (max_norm=1); here that
is the trainer's ``optim.grad_clip``. Scale-equivariant (the log-gradient
divided by c is), so it composes with an fp16 GradScaler. Under DDP the
trainer passes both loss vectors averaged over ranks, so w is identical everywhere.
"""
from __future__ import annotations

import torch
from torch import Tensor

from foodmtl.weighting.base import WeightedLoss, WeightingStrategy
from foodmtl.weighting.registry import WEIGHTINGS

EPS = 1e-8  # added to each loss before the log (official code, with min_losses = 0)
BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam defaults, as the official code


@WEIGHTINGS.register("famo")
class FAMO(WeightingStrategy):
    post_step_losses = True
    own_lr_option = "lr"  # weighting.lr sets the Adam LR of the logits (constant, no schedule, as the official code)

    def __init__(self, tasks: list[str], lr: float = 0.025, gamma: float = 0.01):
        super().__init__(tasks)
        if not lr > 0:
            raise ValueError(f"famo: lr={lr} must be > 0")
        if not gamma >= 0:
            raise ValueError(f"famo: gamma={gamma} must be >= 0")
        self.lr, self.gamma = float(lr), float(gamma)
        k = len(tasks)
        for name in ("logits", "exp_avg", "exp_avg_sq"):
            self.register_buffer(name, torch.zeros(k, dtype=torch.float64))
        self.register_buffer("adam_steps", torch.zeros(k, dtype=torch.long))
        self._prev_losses: dict[str, Tensor] = {}  # this step's L_i + eps in float64, until update()

    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        index = self._index(list(losses))
        z = torch.softmax(self.logits[index], dim=0)
        stacked = torch.stack(list(losses.values()))
        shifted = self._shifted(stacked.detach())
        c = (z / shifted).sum()
        self._prev_losses = dict(zip(losses, shifted))
        weights = z / (c * shifted)
        total = ((z / c).to(stacked.dtype) * (stacked + EPS).log()).sum()  # in the losses' dtype
        return WeightedLoss(total, dict(zip(losses, weights)))

    def update(self, losses: dict[str, Tensor], before: dict[str, Tensor] | None = None) -> None:
        """``losses``: the batch re-evaluated after the step; ``before``: its losses before the
        step (default: those ``combine`` saw; the trainer passes both averaged over ranks)."""
        prev_losses = self._prev_losses if before is None else {t: self._shifted(v) for t, v in before.items()}
        tasks = [t for t in prev_losses if t in losses]
        if not tasks:
            return
        index = self._index(tasks)
        prev = torch.stack([prev_losses[t] for t in tasks])
        new = self._shifted(torch.stack([losses[t].detach() for t in tasks]))
        delta = prev.log() - new.log()
        z = torch.softmax(self.logits[index], dim=0)
        grad = z * (delta - (z * delta).sum())  # (d softmax / d w)^T delta
        self._adam(index, grad)
        self._prev_losses = {}

    def _adam(self, index: Tensor, grad: Tensor) -> None:
        """torch.optim.Adam's update with L2 weight decay, on the ``index`` entries only."""
        beta1, beta2 = BETAS
        grad = grad + self.gamma * self.logits[index]
        self.adam_steps[index] += 1
        m = beta1 * self.exp_avg[index] + (1 - beta1) * grad
        v = beta2 * self.exp_avg_sq[index] + (1 - beta2) * grad**2
        self.exp_avg[index], self.exp_avg_sq[index] = m, v
        steps = self.adam_steps[index].to(self.logits.dtype)
        m_hat = m / (1 - beta1**steps)
        denom = (v / (1 - beta2**steps)).sqrt() + ADAM_EPS
        self.logits[index] -= self.lr * m_hat / denom

    def _shifted(self, losses: Tensor) -> Tensor:
        """L + eps in float64 on the buffers' device (eps would vanish in float32 next to L ~ 1)."""
        return losses.to(self.logits) + EPS

    def _index(self, tasks: list[str]) -> Tensor:
        return torch.tensor([self.tasks.index(t) for t in tasks], device=self.logits.device)
