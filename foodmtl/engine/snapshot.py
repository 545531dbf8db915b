"""A training run's checkpoints: what they hold, where they go, and how a run is put back.

Entries, the same in every checkpoint since v1 (tests/fixtures/v1_checkpoint_layout.json):
``objective`` and, with EMA, ``train_objective`` (engine/ema.py); ``optimizer``, ``scheduler``,
``scaler`` (``Optimization``); ``train_state`` (the trainer's progress: step, epoch, batches of
the epoch done, best score, skip counts, whether the backbone was unfrozen); ``rng`` (torch's and
CUDA's generators); ``config``, ``tasks``, ``wandb_id``, ``init_from``. last.pt and step-<N>.pt
hold them all; best.pt the weights only (checkpoint.weights_only). A part of the run that has
state gives it as ``state_dict()`` (its entries) and takes it back with ``load_state_dict(snapshot)``,
as detectron2's ``TrainerBase.state_dict`` collects its hooks' states.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from foodmtl.config.schema import LAST_EVALUATION
from foodmtl.engine.checkpoint import save_checkpoint, weights_only
from foodmtl.errors import CheckpointError
from foodmtl.tasks import metric_direction
from foodmtl.utils.registry import unknown_name_error


@dataclass
class TrainState:
    """The trainer's progress: the ``train_state`` entry."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0      # batches of this epoch already trained (resume point)
    best: float | None = None    # best value of train.best_metric so far, in its direction
    skipped: int = 0             # unreadable images
    nonfinite_skipped: int = 0   # optimizer steps skipped for a NaN/Inf loss (train.on_nonfinite=skip)
    unfrozen: bool = False       # train.unfreeze_at reached: the frozen backbone joined the optimizer


def scored(metrics: dict[str, float], name: str, best: float | None) -> tuple[float | None, bool]:
    """``train.best_metric`` (``name``) in ``metrics``, and whether it beats ``best`` (None or
    infinite: nothing yet) in the metric's direction, so best.pt is saved. ``last``: no score, and
    every evaluation's model is the best so far."""
    if name == LAST_EVALUATION:
        return None, True
    if name not in metrics:
        raise unknown_name_error("train.best_metric", name, metrics)
    score = metrics[name]
    if best is None or not math.isfinite(best):
        return score, True
    return score, score > best if metric_direction(name) == "max" else score < best


class Checkpoints:
    """``<run>/checkpoints``: last.pt, best.pt (weights only) and the newest ``keep`` step-<N>.pt."""

    def __init__(self, folder: Path, keep: int):
        self.folder, self.keep = folder, keep

    def save(self, name: str, snapshot: dict[str, Any], metrics: dict[str, float] | None = None) -> None:
        """``snapshot`` as ``name``; with ``metrics`` only the weights (best.pt: last.pt holds the rest)."""
        save_checkpoint(snapshot if metrics is None else weights_only(snapshot, metrics), self.folder / name)

    def save_numbered(self, step: int, snapshot: dict[str, Any]) -> None:
        """step-<step>.pt, dropping the oldest beyond ``keep`` (0: none are kept)."""
        if self.keep <= 0:
            return
        self.save(f"step-{step:08d}.pt", snapshot)
        for old in sorted(self.folder.glob("step-*.pt"))[:-self.keep]:
            old.unlink()


class Optimization:
    """The optimizer, its LR schedule and the fp16 loss scaler, as the checkpoint entries
    ``optimizer``, ``scheduler`` and ``scaler``."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                 scaler: torch.amp.GradScaler):
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, snapshot: dict[str, Any]) -> None:
        """A restored optimizer brings the checkpoint's learning rate and weight decay; the config's
        win. They are the same values (so this changes no bit) unless resume_override changed them;
        then the config's schedule goes on from the restored step."""
        configured = [(g["initial_lr"], g["weight_decay"]) for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(snapshot["optimizer"])
        self.scheduler.load_state_dict(snapshot["scheduler"])
        self.scaler.load_state_dict(snapshot["scaler"])
        self.scheduler.base_lrs = [lr for lr, _ in configured]
        for group, (lr, decay), factor in zip(self.optimizer.param_groups, configured, self.scheduler.lr_lambdas):
            group.update(initial_lr=lr, weight_decay=decay, lr=lr * factor(self.scheduler.last_epoch))


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore(snapshot: dict[str, Any], parts: Iterable[Any], path: str | Path) -> TrainState:
    """Each of ``parts`` (``load_state_dict(snapshot)``) in order, then the generators; returns the
    progress the checkpoint recorded. An entry that does not fit what the config builds is a
    CheckpointError naming ``path``."""
    try:
        state = TrainState(**snapshot["train_state"])
        for part in parts:
            part.load_state_dict(snapshot)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} does not fit the model and optimizer its config builds: {exc}") from None
    restore_rng(snapshot["rng"])
    return state
