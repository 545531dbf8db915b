"""Regression tasks (mass, calories, fat, carb, protein): one number per image.

Label: the value in the task's unit, NaN when the image has none. The unit is the spec's single
"class": the one the data set's reader names in its vocabulary (Nutrition5k and SynthFood: g for
mass, fat, carb and protein, kcal for calories), or the task's ``unit`` option, which wins (a
relabel only: values are never converted). Sources that name different units are refused.
Targets are standardised with the training split's mean and standard deviation (``stats``, saved
in checkpoints), so a loss in grams and one in kcal have the same scale; ``standardize: false``
trains on raw units instead (the known-answer ablation, where a raw-unit loss dwarfs the others). Loss (``loss``): ``l1``, ``smooth_l1`` (Huber, beta 1 in
standardised units; the default) or ``mse``. Metrics in original units, over labelled images:
MAE and MAE as a percentage of the mean true value (Nutrition5k, Thames et al. 2021, report
both); lower is better. ``UNITS``: MAE is in the task's unit, MAE % in percent; runs record each
task's unit in summary.json (``foodmtl.tasks.task_units``), where tables and plots read it.
Prediction: the value and its unit.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.data.columns import FloatColumn
from foodmtl.models.heads import LinearHead
from foodmtl.tasks import TASK_UNIT, TaskSpec
from foodmtl.tasks.base import PredictContext, TaskKind

METRICS = {"mae": "min", "mae_pct": "min"}
FRACTIONS = frozenset()  # MAE is in the task's unit, MAE % already a percentage
UNITS = {"mae": TASK_UNIT, "mae_pct": "%"}
LOSSES = {"l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss, "mse": F.mse_loss}


class Regression(TaskKind):
    name = "regression"
    likelihood = "gaussian"
    metrics_directions = METRICS
    primary_metric = "mae"
    defaults = {"loss": "smooth_l1", "standardize": True, "unit": None}

    def check_options(self, task, given):
        options = super().check_options(task, given)
        if options["loss"] not in LOSSES:
            raise ValueError(f"task_options.{task}.loss={options['loss']!r}; choose one of {', '.join(LOSSES)}")
        if not isinstance(options["standardize"], bool):
            raise ValueError(f"task_options.{task}.standardize must be true or false")
        if options["unit"] is not None and not (isinstance(options["unit"], str) and options["unit"].strip()):
            raise ValueError(f"task_options.{task}.unit={options['unit']!r}; expected a unit name such as g or kcal")
        return options

    def classes(self, name, vocab, options):
        """``[unit]``: the ``unit`` option, else the one the data names; none where the data does not label it."""
        named = list(vocab.get(name) or [])
        if len(named) > 1:
            raise ValueError(f"the sources give task '{name}' in different units ({', '.join(named)}); "
                             "convert one source's values first")
        return [options.get("unit") or named[0]] if named else []

    def unit(self, spec: TaskSpec) -> str:
        return spec.classes[0]

    def fit(self, spec: TaskSpec, column: pd.Series) -> TaskSpec:
        """Mean and standard deviation of the labelled training values (std 1 when they do not vary)."""
        values = self.encode(spec, column).labelled()
        if not len(values):
            raise ValueError(f"task '{spec.name}' has no labelled training image")
        std = float(values.std())
        stats = {"mean": float(values.mean()), "std": std if std > 0 and math.isfinite(std) else 1.0}
        return TaskSpec(spec.name, spec.kind, spec.classes, spec.options, stats)

    def encode(self, spec: TaskSpec, column: pd.Series) -> FloatColumn:
        values = pd.to_numeric(column, errors="coerce").astype(float).to_numpy()
        return FloatColumn([None if np.isnan(v) else float(v) for v in values])

    def target(self, spec: TaskSpec, label: float | None, transformed: dict) -> Tensor:
        return torch.tensor(float("nan") if label is None else label, dtype=torch.float32)

    def labelled(self, target: Tensor) -> Tensor:
        return ~torch.isnan(target)

    def head(self, spec: TaskSpec, in_features: int, drop_rate: float) -> nn.Module:
        return LinearHead(in_features, 1, drop_rate)

    def loss(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """Mean over labelled images of the loss in standardised units; exactly 0 when none is."""
        return self.sample_losses(spec, output, target).sum() / self.labelled(target).sum().clamp(min=1)

    def sample_losses(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """The ``loss`` option's loss per image in standardised units; 0 where unlabelled."""
        valid = self.labelled(target)
        scaled = torch.where(valid, self.standardise(spec, target), torch.zeros_like(target))
        per_sample = LOSSES[spec.options.get("loss", "smooth_l1")](output.float().squeeze(-1), scaled,
                                                                    reduction="none")
        return per_sample * valid

    def standardise(self, spec: TaskSpec, value: Tensor) -> Tensor:
        if not self._standardized(spec):
            return value
        return (value - spec.stats["mean"]) / spec.stats["std"]

    def original_units(self, spec: TaskSpec, output: Tensor) -> Tensor:
        value = output.float().squeeze(-1)
        if not self._standardized(spec):
            return value
        return value * spec.stats["std"] + spec.stats["mean"]

    @staticmethod
    def _standardized(spec: TaskSpec) -> bool:
        return bool(spec.options.get("standardize", True)) and bool(spec.stats)

    def metrics(self, spec: TaskSpec) -> nn.Module:
        from foodmtl.tasks.metrics.regression import RegressionMetrics
        return RegressionMetrics(lambda output: self.original_units(spec, output))

    def describe(self, spec: TaskSpec, output: Tensor, context: PredictContext) -> dict:
        return {"value": round(float(self.original_units(spec, output[None])[0]), 4), "unit": spec.classes[0]}


KIND = Regression()
