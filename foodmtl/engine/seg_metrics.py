"""Segmentation metrics from one accumulated confusion matrix (summed across DDP ranks).

``mIoU`` and ``mDice`` average over the classes with a non-zero union, i.e.
present in the target or the prediction of some labelled pixel; classes absent
from both are undefined (0/0) and left out. This is torchmetrics'
``MulticlassJaccardIndex(average="macro", ignore_index=...)`` and
``MulticlassF1Score(average="macro", ...)`` over the whole evaluation set, not
``torchmetrics.segmentation.MeanIoU``, which averages per-batch scores.
``pixel_acc`` is the fraction of labelled pixels predicted correctly. Pixels
labelled ``ignore_index`` count nowhere. Before any labelled pixel, all three are NaN.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from foodmtl.tasks import SEG_IGNORE


class SegmentationMetrics(Metric):
    """``update(logits (B, C, H, W) or class ids (B, H, W), target (B, H, W))``; ``compute() -> dict``."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, num_classes: int, ignore_index: int = SEG_IGNORE, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state("confmat", torch.zeros(num_classes, num_classes, dtype=torch.long),
                       dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Rows of the confusion matrix are target classes, columns predicted ones."""
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise ValueError(f"predictions {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        keep = target != self.ignore_index
        target, preds = target[keep].long(), preds[keep].long()
        n = self.num_classes
        if len(target) and (torch.minimum(target, preds).min() < 0 or torch.maximum(target, preds).max() >= n):
            raise ValueError(f"class ids must lie in 0..{n - 1} (or be {self.ignore_index} in the target)")
        self.confmat += torch.bincount(target * n + preds, minlength=n * n).reshape(n, n)

    def compute(self) -> dict[str, Tensor]:
        confmat = self.confmat.double()
        tp = confmat.diag()
        target_count, predicted_count = confmat.sum(1), confmat.sum(0)
        union = target_count + predicted_count - tp
        present = union > 0
        return {
            "mIoU": (tp[present] / union[present]).mean().float(),
            "mDice": (2 * tp[present] / (target_count + predicted_count)[present]).mean().float(),
            "pixel_acc": (tp.sum() / confmat.sum()).float(),
        }
