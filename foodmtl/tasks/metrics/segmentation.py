"""Segmentation metrics from one accumulated confusion matrix (summed across DDP ranks).

The matrix is torchmetrics' ``MulticlassConfusionMatrix`` (argmax of logits, ``ignore_index``
pixels dropped, bincount, ``dist_reduce_fx="sum"``); the three scores are read off it here.
``mIoU`` and ``mDice`` average over the classes with a non-zero union, i.e. present in the
target or the prediction of some labelled pixel; classes absent from both are undefined (0/0)
and left out. That is torchmetrics' ``MulticlassJaccardIndex(average="macro", ignore_index=...)``
and ``MulticlassF1Score(average="macro", ...)`` over the whole evaluation set (tested equal),
computed from one matrix instead of three metric objects; not ``torchmetrics.segmentation.MeanIoU``,
which averages per-image scores. ``pixel_acc`` is the fraction of labelled pixels predicted
correctly. Pixels labelled ``ignore_index`` count nowhere. Before any labelled pixel, all three are NaN.
"""
from __future__ import annotations

from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from foodmtl.tasks import SEG_IGNORE


class SegmentationMetrics(MulticlassConfusionMatrix):
    """``update(logits (B, C, H, W) or class ids (B, H, W), target (B, H, W))``; ``compute() -> dict``."""

    higher_is_better = True

    def __init__(self, num_classes: int, ignore_index: int = SEG_IGNORE, **kwargs):
        # torchmetrics' own input validation calls torch.unique on every mask; the min/max check
        # in update is enough and much cheaper on full-resolution masks.
        super().__init__(num_classes, ignore_index=ignore_index, validate_args=False, **kwargs)

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Rows of the confusion matrix are target classes, columns predicted ones."""
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise ValueError(f"predictions {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        labelled = target != self.ignore_index
        ids = (target[labelled], preds[labelled])
        if ids[0].numel() and (min(t.min() for t in ids) < 0 or max(t.max() for t in ids) >= self.num_classes):
            raise ValueError(f"class ids must lie in 0..{self.num_classes - 1} (or be {self.ignore_index} in the target)")
        super().update(preds, target)

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
