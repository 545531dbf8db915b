"""Tasks: what each head predicts. A task *kind* is one file in this package.

Each kind (``multiclass``, ``multilabel``, ``regression``, ``segmentation``, ``instances``) owns its label
encoding and absent marker, its head (or decoder hook), loss, metrics with their direction and
how its predictions are reported (``foodmtl/tasks/<kind>.py``, a ``TaskKind``). Model, dataset,
evaluation and predict loop over tasks through ``get_kind(spec.kind)`` and never branch on kinds.

This module stays light (no torch import): the config is validated against it before the
heavy imports, and ``foodmtl table`` reads metric directions from it.

Absent-label markers in training targets (a missing label is masked in the loss, never NaN):
multiclass ``IGNORE_INDEX`` (-1); multilabel a vector of ``IGNORE_INDEX``; regression NaN;
segmentation ``SEG_IGNORE`` (-1) on unlabelled pixels; instances an image without annotations
(``foodmtl/tasks/instances.py``). (Mask *files* mark unlabelled pixels
with the top value of their type, 255 or 65535: ``foodmtl.data.masks``; a class id can be any
other value, so a 499-class mask keeps its class 255.)
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from foodmtl.config.tasks import KNOWN_TASKS, TASK_KINDS, KnownTask  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from foodmtl.config import Config
    from foodmtl.tasks.base import TaskKind

IGNORE_INDEX = -1
SEG_IGNORE = -1

TASK_UNIT = "task"  # in a kind's ``UNITS``: the metric is in the task's own unit (task_units)
KIND_NAMES = ("multiclass", "multilabel", "regression", "segmentation", "instances")



Direction = Literal["max", "min"]


@dataclass(frozen=True)
class TaskSpec:
    """One task of a model. ``classes``: class names (multiclass, multilabel, segmentation mask
    ids), or for regression one entry, the unit. ``options``: the kind's validated options
    (e.g. the regression loss); ``stats``: what the kind learnt from the training split
    (regression: target mean and standard deviation)."""

    name: str
    kind: str
    classes: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    stats: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def get_kind(name: str) -> "TaskKind":
    """The TaskKind object of ``name`` (its module is imported on first use)."""
    if name not in KIND_NAMES:
        from foodmtl.utils.registry import unknown_name_error
        raise unknown_name_error("task kind", name, KIND_NAMES)
    return importlib.import_module(f"foodmtl.tasks.{name}").KIND


def loss_owners(tasks: list[TaskSpec]) -> dict[str, str]:
    """Each loss the weighting strategy sees (a task, or a part of one: ``TaskKind.loss_names``) -> its task."""
    return {loss: t.name for t in tasks for loss in get_kind(t.kind).loss_names(t)}


def metric_direction(key: str) -> Direction:
    """``max`` or ``min`` for a metric key ``[eval/]<task>/<metric>`` (or a bare metric name);
    the metric's kind declares it. Losses are ``min``; unknown metrics ``max``."""
    metric = key.rsplit("/", 1)[-1]
    if "loss" in key.split("/"):
        return "min"
    for kind in KIND_NAMES:
        directions = importlib.import_module(f"foodmtl.tasks.{kind}").METRICS
        if metric in directions:
            return directions[metric]
    return "max"


def metric_is_fraction(key: str) -> bool:
    """Whether ``[eval/]<task>/<metric>`` is a fraction in [0, 1] (shown as percent), as the
    metric's kind declares it; the task's kind decides between kinds that share a metric name."""
    parts = key.split("/")
    kind = TASK_KINDS.get(parts[-2]) if len(parts) >= 2 else None
    kinds = [kind] if kind else list(KIND_NAMES)
    return any(parts[-1] in importlib.import_module(f"foodmtl.tasks.{k}").FRACTIONS for k in kinds)


def metric_unit(key: str, units: dict[str, str]) -> str:
    """The unit ``[eval/]<task>/<metric>`` is shown in: ``%`` for a fraction (shown × 100), else what
    its kind's ``UNITS`` declares, ``TASK_UNIT`` standing for the task's own unit in ``units`` (task ->
    unit, as a run recorded it: ``task_units``); "" where none is known."""
    if metric_is_fraction(key):
        return "%"
    parts = key.split("/")
    kind = TASK_KINDS.get(parts[-2]) if len(parts) >= 2 else None
    declared = getattr(importlib.import_module(f"foodmtl.tasks.{kind}"), "UNITS", {}).get(parts[-1], "") if kind else ""
    return units.get(parts[-2], "") if declared == TASK_UNIT else declared


def task_units(tasks: list[TaskSpec]) -> dict[str, str]:
    """Task -> the unit of its values, for the tasks whose kind has one (what a run records)."""
    return {t.name: unit for t in tasks if (unit := get_kind(t.kind).unit(t))}


def higher_is_better(key: str) -> bool:
    return metric_direction(key) == "max"


def task_options(cfg: "Config") -> dict[str, dict[str, Any]]:
    """``cfg.task_options`` with ``optim.label_smoothing`` as the default of every task whose
    kind has that option (multiclass)."""
    options = {name: dict(value or {}) for name, value in cfg.task_options.items()}
    if cfg.optim.label_smoothing:
        for name in cfg.tasks:
            if name in TASK_KINDS and "label_smoothing" in get_kind(TASK_KINDS[name]).defaults:
                options.setdefault(name, {}).setdefault("label_smoothing", cfg.optim.label_smoothing)
    return options
