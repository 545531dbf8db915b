"""Per-task losses that mask unlabelled samples.

Losses are means over the labelled samples only, written as masked sums so
that a batch without labels gives exactly 0 (zero gradient, never NaN) and no
host-device synchronisation is needed to find out.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from foodmtl.tasks import IGNORE_INDEX, SEG_IGNORE, TaskSpec


def multiclass_loss(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    per_sample = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX,
                                 label_smoothing=label_smoothing, reduction="none")
    count = (target != IGNORE_INDEX).sum().clamp(min=1)
    return per_sample.sum() / count


def multilabel_loss(logits: Tensor, target: Tensor) -> Tensor:
    valid = (target[:, :1] != IGNORE_INDEX).to(logits.dtype)
    per_entry = F.binary_cross_entropy_with_logits(logits.float(), target.clamp(min=0), reduction="none")
    count = (valid.sum() * target.shape[1]).clamp(min=1)
    return (per_entry * valid).sum() / count


def task_loss(task: TaskSpec, logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    if task.kind == "multiclass":
        return multiclass_loss(logits, target, label_smoothing)
    if task.kind == "multilabel":
        return multilabel_loss(logits, target)
    from foodmtl.engine.seg_loss import segmentation_loss
    return segmentation_loss(logits.float(), target, ignore_index=SEG_IGNORE)
