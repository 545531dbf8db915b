"""The loss-weighting interface, decoupled from the model.

Two families share one base class:

* loss-level strategies (uniform, manual, uncertainty, DWA, ...) implement
  ``combine(losses) -> WeightedLoss``; the objective calls them inside the
  DDP-wrapped forward, so their learnable parameters are synchronised by DDP;
* gradient-level strategies (PCGrad, CAGrad, MGDA, ...) set
  ``gradient_based = True`` and implement ``backward(losses, shared, representation)``,
  which must leave the final gradients in ``.grad`` of every parameter.

Callers pass only the tasks *present* in the batch (absent tasks are left out),
so no strategy ever sees a zero or NaN loss for a task without labels.
State that must survive a resume lives in buffers/parameters (``state_dict``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import Tensor, nn


@dataclass
class WeightedLoss:
    total: Tensor                      # the scalar to back-propagate
    weights: dict[str, Tensor | float]  # effective weight of each present task, for logging


class WeightingStrategy(nn.Module):
    """Base class over a fixed list of task names."""

    gradient_based: ClassVar[bool] = False
    # update() wants the batch's losses re-evaluated after the optimizer step (FAMO)
    post_step_losses: ClassVar[bool] = False
    # backward(s * losses) leaves s times the gradients, so an fp16 GradScaler's unscale is exact
    scale_equivariant: ClassVar[bool] = True
    # the constructor option that is ``weighting.lr``, for a strategy that updates its own state outside the
    # trainer's optimizer (FAMO: ``lr``); None: ``weighting.lr`` is the LR of the strategy's parameters
    own_lr_option: ClassVar[str | None] = None

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        self.tasks = list(tasks)
        self.likelihoods: dict[str, str] = {}  # task -> gaussian | categorical (TaskKind.likelihood), set by build_weighting
        self.lr: float | None = None  # the LR of this strategy's parameters (weighting.lr); None: optim.lr

    def forward(self, losses: dict[str, Tensor]) -> WeightedLoss:
        self._check(losses)
        return self.combine(losses)

    def combine(self, losses: dict[str, Tensor]) -> WeightedLoss:
        """Loss-level: weight the present tasks' losses into one scalar."""
        raise NotImplementedError(f"{type(self).__name__} is gradient-level; call backward()")

    def backward(
        self,
        losses: dict[str, Tensor],
        shared: Sequence[nn.Parameter],
        representation: Tensor | None = None,
    ) -> dict[str, Tensor | float]:
        """Back-propagate the weighted loss; returns the task weights used.

        Loss-level strategies back-propagate ``combine``; gradient-level ones
        override this with their own use of per-task gradients.
        """
        self._check(losses)
        out = self.combine(losses)
        out.total.backward()
        return out.weights

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """This strategy's parameters that belong to ``task`` (entries of ParameterDicts keyed by it)."""
        return [p for name, p in self.named_parameters() if name.rsplit(".", 1)[-1] == task]

    def update(self, losses: dict[str, Tensor]) -> None:
        """Called after each optimizer step with the step's detached losses."""

    def end_epoch(self) -> None:
        """Called at the end of each training epoch."""

    def _check(self, losses: dict[str, Tensor]) -> None:
        unknown = set(losses) - set(self.tasks)
        if unknown:
            raise KeyError(f"losses for unknown tasks {sorted(unknown)}; strategy knows {self.tasks}")
        if not losses:
            raise ValueError("no task has labels in this batch")


def weighted_sum(losses: dict[str, Tensor], weights: dict[str, float | Tensor]) -> WeightedLoss:
    total = torch.stack([weights[t] * loss for t, loss in losses.items()]).sum()
    return WeightedLoss(total, {t: weights[t] for t in losses})
