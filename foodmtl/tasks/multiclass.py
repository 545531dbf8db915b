"""Multiclass tasks (dish, category, cuisine): one class per image, softmax cross-entropy.

Label: the class index, ``IGNORE_INDEX`` (-1) when the image has none. Metrics (torchmetrics,
reduced over DDP ranks): micro top-1 accuracy, macro F1, and top-3 / top-5 accuracy when there
are more classes than k (top-3 error is FoodX-251's challenge metric), each with its own state:
torchmetrics' compute groups (on by default) would merge top-3 and top-5 for good once their
states agree after the first batch. Prediction: the ``top_k`` most probable classes with their
probabilities.
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.data.columns import IndexColumn
from foodmtl.models.heads import LinearHead
from foodmtl.tasks import IGNORE_INDEX, TaskSpec
from foodmtl.tasks.base import PredictContext, TaskKind

METRICS = {"top1": "max", "top3": "max", "top5": "max", "f1_macro": "max"}
FRACTIONS = frozenset(METRICS)  # every metric is a fraction in [0, 1]
TOP_K = (3, 5)  # reported when a task has more classes than k


class Multiclass(TaskKind):
    name = "multiclass"
    metrics_directions = METRICS
    primary_metric = "top1"
    single_label = True
    defaults = {"label_smoothing": 0.0}

    def check_options(self, task, given):
        options = super().check_options(task, given)
        if not 0.0 <= float(options["label_smoothing"]) < 1.0:
            raise ValueError(f"task_options.{task}.label_smoothing={options['label_smoothing']} must lie in [0, 1)")
        return options

    def prepare(self, spec, vocab):
        if spec.num_classes < 2:
            raise ValueError(f"task '{spec.name}' has {spec.num_classes} class in this data ({list(spec.classes)}); "
                             "a multiclass task needs at least 2: drop it from tasks")
        return spec

    def metric_names(self, spec: TaskSpec) -> list[str]:
        return ["top1", "f1_macro", *(f"top{k}" for k in TOP_K if spec.num_classes > k)]

    def encode(self, spec: TaskSpec, column: pd.Series) -> IndexColumn:
        index = {name: i for i, name in enumerate(spec.classes)}
        return IndexColumn([index.get(v) if isinstance(v, str) else None for v in column])

    def target(self, spec: TaskSpec, label: int | None, transformed: dict) -> Tensor:
        return torch.tensor(IGNORE_INDEX if label is None else label)

    def labelled(self, target: Tensor) -> Tensor:
        return target != IGNORE_INDEX

    def head(self, spec: TaskSpec, in_features: int, drop_rate: float) -> nn.Module:
        return LinearHead(in_features, spec.num_classes, drop_rate)

    def loss(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """Mean over labelled samples, as a masked sum: exactly 0 (zero gradient) when none is."""
        return self.sample_losses(spec, output, target).sum() / (target != IGNORE_INDEX).sum().clamp(min=1)

    def sample_losses(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy (label smoothing included) per sample; 0 where unlabelled."""
        return F.cross_entropy(output.float(), target, ignore_index=IGNORE_INDEX, reduction="none",
                               label_smoothing=float(spec.options.get("label_smoothing", 0.0)))

    def metrics(self, spec: TaskSpec) -> nn.Module:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        n = spec.num_classes
        metrics = {"top1": MulticlassAccuracy(n, top_k=1, average="micro"),
                   "f1_macro": MulticlassF1Score(n, average="macro")}
        metrics.update({f"top{k}": MulticlassAccuracy(n, top_k=k, average="micro") for k in TOP_K if n > k})
        return MetricCollection(metrics, compute_groups=False)

    def describe(self, spec: TaskSpec, output: Tensor, context: PredictContext) -> list[dict]:
        probs = output.float().softmax(0)
        top = probs.topk(min(context.top_k, len(probs))).indices.tolist()
        return [{"name": spec.classes[i], "prob": round(float(probs[i]), 6)} for i in top]


KIND = Multiclass()
