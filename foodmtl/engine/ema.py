"""Exponential moving average of the model's weights (``train.ema_decay``), timm's ModelEmaV3.

After every optimizer step, ema = decay * ema + (1 - decay) * weights, over the whole state_dict
of the MultiTaskModel (parameters and BatchNorm statistics; the weighting strategy's parameters
are not part of the model). ModelEmaV3 is given the step, so its first update copies the weights
(decay 0) and a resumed run continues the same sequence. Frozen weights stay bit-identical
(a lerp between equal values is that value).

When it is on, the EMA model is the one the run reports: its metrics are ``eval/...``, the raw
weights' ``eval_raw/...``; ``train.best_metric`` is read from the EMA's; and a checkpoint's
``objective`` holds the EMA weights (what eval, predict, export and ``init_from`` read, and all
best.pt keeps), while resumable checkpoints also hold the raw ``train_objective`` training
continues from.

DDP: every rank updates its own EMA from the same (all-reduced) weights, so the EMA parameters
agree across ranks; BatchNorm statistics are rank-local, so the trainer evaluates the EMA with
rank 0's buffers (``broadcast_buffers``), the ones rank 0 saves.
"""
from __future__ import annotations

from typing import Any

from timm.utils import ModelEmaV3
from torch import Tensor, nn

PREFIX = "model."  # the model's keys inside the Objective's state_dict


class Ema:
    """The trainer's weights as a checkpoint component: the Objective (model + weighting) and,
    with ``decay`` > 0, the EMA of its model. Build it before ``model.compile()``: a deep copy of
    a compiled module would run the original's forward."""

    def __init__(self, objective: nn.Module, decay: float):
        self.objective = objective
        self.average = ModelEmaV3(objective.model, decay=decay) if decay > 0 else None

    @property
    def on(self) -> bool:
        return self.average is not None

    @property
    def module(self) -> nn.Module:
        """The EMA model (only when on)."""
        return self.average.module

    @property
    def reported(self) -> nn.Module:
        """The model the run's metrics and checkpoints describe: the EMA's when on."""
        return self.module if self.on else self.objective.model

    def update(self, model: nn.Module, step: int) -> None:
        if self.on:
            self.average.update(model, step=step)

    def state_dict(self) -> dict[str, Any]:
        """``objective``: the reported weights; with EMA also ``train_objective``, the raw ones."""
        objective = self.objective.state_dict()
        if not self.on:
            return {"objective": objective}
        reported = {**objective, **{PREFIX + k: v for k, v in self.module.state_dict().items()}}
        return {"objective": reported, "train_objective": objective}

    def load_state_dict(self, snapshot: dict[str, Any]) -> None:
        """From a checkpoint's entries; a run without EMA saved its raw weights as ``objective``."""
        self.objective.load_state_dict(snapshot.get("train_objective", snapshot["objective"]))
        if self.on:
            self.module.load_state_dict(model_state(snapshot["objective"]))


def model_state(objective_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's part of an Objective state_dict, with the model's own keys."""
    return {k[len(PREFIX):]: v for k, v in objective_state.items() if k.startswith(PREFIX)}
