"""Per-task evaluation metrics on torchmetrics (so DDP ranks are reduced for us).

multiclass: top-1 / top-5 accuracy (micro) and macro F1, ignoring unlabelled samples;
multilabel: micro F1 at 0.5 and macro mAP over labelled samples;
segmentation: mIoU, mean Dice, pixel accuracy.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelAveragePrecision,
    MultilabelF1Score,
)

from foodmtl.tasks import IGNORE_INDEX, TaskSpec


def multiclass_metrics(n: int) -> MetricCollection:
    metrics: dict[str, Metric] = {
        "top1": MulticlassAccuracy(n, top_k=1, average="micro", ignore_index=IGNORE_INDEX),
        "f1_macro": MulticlassF1Score(n, average="macro", ignore_index=IGNORE_INDEX),
    }
    if n > 5:
        metrics["top5"] = MulticlassAccuracy(n, top_k=5, average="micro", ignore_index=IGNORE_INDEX)
    return MetricCollection(metrics)


def multilabel_metrics(n: int) -> MetricCollection:
    return MetricCollection({
        "f1_micro": MultilabelF1Score(n, average="micro"),
        "mAP": MultilabelAveragePrecision(n, average="macro"),
    })


class TaskMetrics(nn.Module):
    """One metric collection per task; ``compute`` returns ``{"task/metric": float}``."""

    def __init__(self, tasks: list[TaskSpec]):
        super().__init__()
        self.specs = {t.name: t for t in tasks}
        self.collections = nn.ModuleDict({t.name: self._build(t) for t in tasks})

    @staticmethod
    def _build(task: TaskSpec) -> nn.Module:
        if task.kind == "multiclass":
            return multiclass_metrics(task.num_classes)
        if task.kind == "multilabel":
            return multilabel_metrics(task.num_classes)
        from foodmtl.engine.seg_metrics import SegmentationMetrics
        return SegmentationMetrics(task.num_classes)

    @torch.no_grad()
    def update(self, logits: dict[str, Tensor], targets: dict[str, Tensor]) -> None:
        for name, spec in self.specs.items():
            pred, target = logits[name].float(), targets[name]
            if spec.kind == "multilabel":
                keep = target[:, 0] != IGNORE_INDEX
                pred, target = pred[keep], target[keep].long()
                if len(target) == 0:
                    continue
            self.collections[name].update(pred, target)

    def compute(self) -> dict[str, float]:
        out = {}
        for name, collection in self.collections.items():
            if not self._updated(collection):
                continue
            for key, value in collection.compute().items():
                out[f"{name}/{key}"] = float(value)
        return out

    @staticmethod
    def _updated(collection: nn.Module) -> bool:
        metrics = collection.values() if isinstance(collection, MetricCollection) else [collection]
        return any(m.update_count > 0 for m in metrics)

    def reset(self) -> None:
        for collection in self.collections.values():
            collection.reset()
