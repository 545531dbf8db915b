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

from timm.utils import ModelEmaV3
from torch import Tensor, nn

PREFIX = "model."  # the model's keys inside the Objective's state_dict


def build_ema(model: nn.Module, decay: float) -> ModelEmaV3 | None:
    """An EMA copy of ``model`` (None when ``decay`` is 0). Build it before ``model.compile()``:
    a deep copy of a compiled module would run the original's forward."""
    return ModelEmaV3(model, decay=decay) if decay > 0 else None


def reported_state(objective_state: dict[str, Tensor], ema: ModelEmaV3 | None) -> dict[str, Tensor]:
    """The Objective's state with the model's weights replaced by the EMA's."""
    if ema is None:
        return objective_state
    return {**objective_state, **{PREFIX + k: v for k, v in ema.module.state_dict().items()}}


def model_state(objective_state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The model's part of an Objective state_dict, with the model's own keys."""
    return {k[len(PREFIX):]: v for k, v in objective_state.items() if k.startswith(PREFIX)}
