"""Multi-label tasks (ingredients): a set of classes per image, per-class sigmoid cross-entropy.

Label: the list of class indices present (possibly empty); a vector of ``IGNORE_INDEX`` when the
image has no label at all (not the same as "no ingredient"). Metrics over labelled images: micro
F1 at probability 0.5 and macro average precision (mAP). Prediction: the classes at or above
``threshold``, most probable first.

Per-image labels from masks (``task_options.ingredients.from_masks: true``): an image that has a
segmentation mask is labelled with the mask classes present in it (id 0, background, excluded;
``min_fraction``: a class must cover at least this fraction of the labelled pixels), read from the
mask file as it is, before augmentation. Mask classes and the task's classes are one vocabulary,
matched by name: the task's classes are the union of the data's ingredient names (e.g. from a
taxonomy) and the mask class names, so an image without a mask (Food-101 in a mixed run) keeps
its class-level taxonomy label and both kinds of source train the same head.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.data.columns import RaggedColumn, StringColumn
from foodmtl.data.masks import mask_ignore_value, read_mask
from foodmtl.models.heads import LinearHead
from foodmtl.tasks import IGNORE_INDEX, KNOWN_TASKS, TaskSpec
from foodmtl.tasks.base import PredictContext, TaskKind

METRICS = {"f1_micro": "max", "mAP": "max"}
FRACTIONS = frozenset(METRICS)  # every metric is a fraction in [0, 1]


class Multilabel(TaskKind):
    name = "multilabel"
    metrics_directions = METRICS
    primary_metric = "mAP"
    defaults = {"from_masks": False, "min_fraction": 0.0}

    def check_options(self, task, given):
        options = super().check_options(task, given)
        if not isinstance(options["from_masks"], bool):
            raise ValueError(f"task_options.{task}.from_masks must be true or false")
        if not 0.0 <= float(options["min_fraction"]) < 1.0:
            raise ValueError(f"task_options.{task}.min_fraction={options['min_fraction']} must lie in [0, 1)")
        return options

    def classes(self, name, vocab, options):
        names = list(vocab.get(name) or [])
        if options.get("from_masks"):
            names += [n for n in (vocab.get("segmentation") or [])[1:] if n not in names]
        return names

    def prepare(self, spec: TaskSpec, vocab: dict[str, list[str]]) -> TaskSpec:
        """With ``from_masks``: ``mask_map``, the task's class index of each mask id (-1: background)."""
        if not spec.options.get("from_masks"):
            return spec
        index = {name: i for i, name in enumerate(spec.classes)}
        mask_map = [-1] + [index[n] for n in (vocab.get("segmentation") or [])[1:]]
        return TaskSpec(spec.name, spec.kind, spec.classes, {**spec.options, "mask_map": mask_map}, spec.stats)

    def labels(self, spec: TaskSpec, frame: pd.DataFrame):
        listed = self.encode(spec, frame[KNOWN_TASKS[spec.name].column])
        if not spec.options.get("from_masks"):
            return listed
        return MaskOrListed(listed, StringColumn(frame["mask"]))

    def load(self, spec: TaskSpec, label, image_hw):
        if not isinstance(label, MaskPath):
            return label, {}
        return classes_in_mask(label, spec.options["mask_map"], float(spec.options["min_fraction"])), {}

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
        return self.entry_losses(output, target).sum() / (self.labelled(target).sum() * target.shape[1]).clamp(min=1)

    def sample_losses(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """Each row's mean over its classes (rows have equal length: their mean is ``loss``)."""
        return self.entry_losses(output, target).mean(1)

    def entry_losses(self, output: Tensor, target: Tensor) -> Tensor:
        """(B, C) binary cross-entropy per class; rows of unlabelled samples 0."""
        valid = self.labelled(target).unsqueeze(1).float()
        return F.binary_cross_entropy_with_logits(output.float(), target.clamp(min=0), reduction="none") * valid

    def metrics(self, spec: TaskSpec) -> nn.Module:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MultilabelAveragePrecision, MultilabelF1Score

        n = spec.num_classes
        return _IntTargets(MetricCollection({"f1_micro": MultilabelF1Score(n, average="micro"),
                                             "mAP": MultilabelAveragePrecision(n, average="macro")},
                                            compute_groups=False))  # see multiclass.metrics

    def describe(self, spec: TaskSpec, output: Tensor, context: PredictContext) -> list[dict]:
        probs = output.float().sigmoid()
        order = [i for i in probs.argsort(descending=True).tolist() if probs[i] >= context.threshold]
        return [{"name": spec.classes[i], "prob": round(float(probs[i]), 6)} for i in order]


class MaskPath(str):
    """A multilabel label still to be read from this mask file."""


class MaskOrListed:
    """Per row: the mask path where the row has a mask, else its listed label."""

    def __init__(self, listed: RaggedColumn, masks: StringColumn):
        self.listed, self.masks = listed, masks

    def __len__(self) -> int:
        return len(self.listed)

    def __getitem__(self, i: int):
        mask = self.masks[i]
        return MaskPath(mask) if mask is not None else self.listed[i]


def classes_in_mask(path: str, mask_map: list[int], min_fraction: float) -> list[int]:
    """Task class indices of the mask ids covering at least ``min_fraction`` of the labelled pixels."""
    from foodmtl.errors import SampleError

    mask = read_mask(path)
    ids = mask.ravel()
    ids = ids[ids != mask_ignore_value(mask)]
    if len(ids) and int(ids.max()) >= len(mask_map):
        raise SampleError(f"mask {path} holds class id {int(ids.max())}, outside 0..{len(mask_map) - 1}")
    counts = np.bincount(ids, minlength=len(mask_map))
    present = (counts > 0) & (counts >= min_fraction * max(1, len(ids)))
    return sorted({mask_map[k] for k in np.flatnonzero(present) if mask_map[k] >= 0})


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
