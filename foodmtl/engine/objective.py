"""Model + per-task losses + loss weighting as one module, the unit DDP wraps.

Keeping the weighting strategy inside the wrapped module is what keeps its
learnable parameters (e.g. uncertainty log-variances) identical across ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import TaskSpec, get_kind, loss_owners
from foodmtl.weighting import WeightingStrategy


@dataclass
class StepOutput:
    losses: dict[str, Tensor]         # every weighted loss's value, by its name (``loss_names``; 0 where absent)
    present: list[str]                # losses of tasks with at least one label in the batch
    total: Tensor | None              # weighted loss (0 when no task is present); None for gradient-based
    weights: dict[str, Tensor | float]
    representation: Tensor
    logits: dict[str, Tensor]


def task_loss(spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
    """The masked loss of one task, by its kind (0 with a zero gradient when nothing is labelled)."""
    return get_kind(spec.kind).loss(spec, output, target)


class Objective(nn.Module):
    def __init__(self, model: MultiTaskModel, weighting: WeightingStrategy):
        super().__init__()
        self.model = model
        self.weighting = weighting
        self.specs: dict[str, TaskSpec] = {t.name: t for t in model.tasks}
        self.owners: dict[str, str] = loss_owners(model.tasks)  # weighted loss -> its task

    def forward(self, images: Tensor, targets: dict[str, Tensor], present: list[str]) -> StepOutput:
        out = self.model(images)
        losses = self._losses(out.logits, targets)
        present_losses = {t: losses[t] for t, task in self.owners.items() if task in present}
        total, weights = None, {}
        if not self.weighting.gradient_based:
            total = self._anchor(losses, present)
            if present_losses:
                weighted = self.weighting(present_losses)
                total = total + weighted.total
                weights = weighted.weights
        return StepOutput(losses, list(present_losses), total, weights, out.representation, out.logits)

    def task_losses(self, images: Tensor, targets: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every task's loss alone, without the weighting strategy (which keeps per-step state)."""
        return self._losses(self.model(images).logits, targets)

    def _losses(self, logits: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        losses = {}
        for name, spec in self.specs.items():
            kind = get_kind(spec.kind)
            if kind.loss_names(spec) == [name]:
                losses[name] = task_loss(spec, logits[name], targets[name])
            else:
                losses.update(kind.loss_terms(spec, logits[name], targets[name]))
        return losses

    def task_parameters(self, loss: str) -> list[nn.Parameter]:
        """The parameters only ``loss`` trains: its task's head (or decoder) and its strategy weights."""
        return self.model.task_parameters(self.owners.get(loss, loss)) + self.weighting.task_parameters(loss)

    def _anchor(self, losses: dict[str, Tensor], present: list[str]) -> Tensor:
        """0 that touches every head and strategy parameter, so DDP's reducer sees
        a gradient (of zero) for each even when a task is absent on this rank."""
        zero = sum((losses[t] * 0.0 for t in losses if self.owners[t] not in present), torch.zeros(()))
        for p in self.weighting.parameters():
            zero = zero + p.sum() * 0.0
        return zero
