"""Checks a run passes before it claims its folder: that it will train, that its best metric
exists, and that W&B can start.

Without them a loader that yields no full batch runs zero optimizer steps, logs a NaN loss and
exits 0, a misspelt ``train.best_metric`` is caught only after the first epoch, and a bad
``WANDB_MODE`` after the run folder was claimed (leaving it behind).
"""
from __future__ import annotations

import math

from foodmtl.config import Config
from foodmtl.config.schema import LAST_EVALUATION

from foodmtl.errors import ConfigError
from foodmtl.utils.registry import unknown_name_error
from foodmtl.tasks import TaskSpec, get_kind


def require_training_steps(batches: int, samples: int, cfg: Config, world: int) -> None:
    """``batches``: this rank's full batches per epoch (the last partial one is dropped, so every
    rank takes the same number of steps); a window of ``train.accum_steps`` that ends the epoch
    early still steps, so one batch means one optimizer step."""
    if batches > 0:
        return
    limit = f" (data.limit={cfg.data.limit})" if cfg.data.limit else ""
    raise ConfigError(f"no optimizer step per epoch: the training split has {samples} sample(s){limit}, "
                      f"{math.ceil(samples / world)} per rank on {world} rank(s), fewer than "
                      f"data.batch_size={cfg.data.batch_size}, and a partial last batch is dropped; lower "
                      "data.batch_size, raise data.limit or use fewer ranks")


def metric_names(tasks: list[TaskSpec]) -> list[str]:
    """Every ``<task>/<metric>`` an evaluation of these tasks reports, then the eval losses
    ``<task>/loss`` and their sum ``loss`` (engine/evaluate.py; lower is better)."""
    return [f"{t.name}/{m}" for t in tasks for m in get_kind(t.kind).metric_names(t)] + \
        [f"{t.name}/loss" for t in tasks] + ["loss"]


def require_metric(name: str, tasks: list[TaskSpec]) -> None:
    if name != LAST_EVALUATION and name not in metric_names(tasks):
        raise unknown_name_error("train.best_metric", name, [*metric_names(tasks), LAST_EVALUATION])


def require_wandb_mode(mode: str) -> None:
    """A ``WANDB_MODE`` that wandb would reject is a ConfigError now, before the run folder is claimed."""
    from foodmtl.tracking.wandb_run import resolve_mode

    resolve_mode(mode)
