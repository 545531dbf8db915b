"""Multi-label tasks (ingredients): a set of classes per image, per-class sigmoid cross-entropy.

Label: the list of class indices present (possibly empty); a vector of ``IGNORE_INDEX`` when the
image has no label at all (not the same as "no ingredient"). Metrics over labelled images: micro
F1 at probability 0.5 and macro average precision (mAP). Prediction: the classes at or above
``threshold``, most probable first.
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.data.columns import RaggedColumn
from foodmtl.models.heads import LinearHead
from foodmtl.tasks import IGNORE_INDEX, TaskSpec
from foodmtl.tasks.base import PredictContext, TaskKind

METRICS = {"f1_micro": "max", "mAP": "max"}


class Multilabel(TaskKind):
    name = "multilabel"
    metrics_directions = METRICS
    primary_metric = "mAP"

    def encode(self, spec: TaskSpec, column: pd.Series) -> RaggedColumn:
        index = {name: i for i, name in enumerate(spec.classes)}
        return RaggedColumn([[index[n] for n in v if n in index] if isinstance(v, (tuple, list)) else None
                             for v in column])

    def target(self, spec: TaskSpec, label: list[int] | None, transformed: dict) -> Tensor:
        if label is None:
            return torch.full((spec.num_classes,), float(IGNORE_INDEX))
        vec = torch.zeros(spec.num_classes)
        vec[label] = 1.0
        return vec

    def labelled(self, target: Tensor) -> Tensor:
        return target[:, 0] != IGNORE_INDEX

    def head(self, spec: TaskSpec, in_features: int, drop_rate: float) -> nn.Module:
        return LinearHead(in_features, spec.num_classes, drop_rate)

    def loss(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """Mean over the entries of labelled rows; exactly 0 (zero gradient) when no row is labelled."""
        valid = self.labelled(target).unsqueeze(1).float()
        per_entry = F.binary_cross_entropy_with_logits(output.float(), target.clamp(min=0), reduction="none")
        return (per_entry * valid).sum() / (valid.sum() * target.shape[1]).clamp(min=1)

    def metrics(self, spec: TaskSpec) -> nn.Module:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MultilabelAveragePrecision, MultilabelF1Score

        n = spec.num_classes
        return _IntTargets(MetricCollection({"f1_micro": MultilabelF1Score(n, average="micro"),
                                             "mAP": MultilabelAveragePrecision(n, average="macro")}))

    def describe(self, spec: TaskSpec, output: Tensor, context: PredictContext) -> list[dict]:
        probs = output.float().sigmoid()
        order = [i for i in probs.argsort(descending=True).tolist() if probs[i] >= context.threshold]
        return [{"name": spec.classes[i], "prob": round(float(probs[i]), 6)} for i in order]


class _IntTargets(nn.Module):
    """torchmetrics' multilabel metrics want integer targets."""

    def __init__(self, collection: nn.Module):
        super().__init__()
        self.collection = collection

    def update(self, output: Tensor, target: Tensor) -> None:
        self.collection.update(output, target.long())

    def compute(self) -> dict[str, Tensor]:
        return self.collection.compute()

    def reset(self) -> None:
        self.collection.reset()


KIND = Multilabel()
