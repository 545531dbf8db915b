"""Semantic segmentation: a class id per pixel, predicted by the decoder on the backbone's maps.

Label: the path of a mask PNG (``foodmtl.data.masks``: 8- or 16-bit class ids, the type's top
value, 255 or 65535, on unlabelled pixels). The training target holds the class ids and
``SEG_IGNORE`` (-1) on unlabelled pixels; an image without a mask gets -1 everywhere. The mask goes
through the same geometric augmentation as its image (nearest-neighbour). A mask whose size
differs from its image, or that holds an id outside the class list (and not 255), is a
``SampleError`` naming the mask file: skipped and counted like an unreadable image, or fatal
with ``data.strict=true``. Loss: pixel cross-entropy + soft Dice over labelled pixels
(``foodmtl/tasks/losses/segmentation.py``): per batch in training, over the whole set (as one
batch) in evaluation. Metrics: mIoU, mean Dice and pixel accuracy from one confusion matrix over
the evaluation set (``foodmtl/tasks/metrics/segmentation.py``). Prediction: the classes present in
the predicted mask, and a picture (image | prediction) when one is asked for.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.data.columns import StringColumn
from foodmtl.errors import SampleError
from foodmtl.data.masks import mask_ignore_value, read_mask
from foodmtl.tasks import SEG_IGNORE, TaskSpec
from foodmtl.tasks.base import PredictContext, TaskKind

METRICS = {"mIoU": "max", "mDice": "max", "pixel_acc": "max"}
FRACTIONS = frozenset(METRICS)  # every metric is a fraction in [0, 1]
PICTURE_SIDE = 256  # small model inputs are enlarged for the picture


class Segmentation(TaskKind):
    name = "segmentation"
    metrics_directions = METRICS
    primary_metric = "mIoU"
    dense = True
    pixel_labels = True
    ids_in_files = True

    def encode(self, spec: TaskSpec, column: pd.Series) -> StringColumn:
        return StringColumn(column)

    def load(self, spec: TaskSpec, label: str | None, image_hw: tuple[int, int]) -> tuple[str | None, dict]:
        if label is None:
            return None, {}
        return label, {"mask": checked_mask(label, image_hw, spec.num_classes)}


    def target(self, spec: TaskSpec, label: str | None, transformed: dict) -> Tensor:
        if label is None:
            return torch.full(tuple(transformed["image"].shape[-2:]), SEG_IGNORE)
        mask = transformed["mask"]
        unlabelled = 255 if mask.dtype == torch.uint8 else 65535
        target = mask.long()
        return target.masked_fill_(target == unlabelled, SEG_IGNORE)

    def labelled(self, target: Tensor) -> Tensor:
        return (target != SEG_IGNORE).flatten(1).any(1)

    def loss(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        from foodmtl.tasks.losses.segmentation import segmentation_loss
        return segmentation_loss(output.float(), target, ignore_index=SEG_IGNORE)

    def eval_loss_size(self, spec: TaskSpec) -> int:
        return 2 + 4 * spec.num_classes

    def eval_loss_state(self, spec: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
        """CE sum, labelled pixels and per-class Dice sums (``loss_sums``)."""
        from foodmtl.tasks.losses.segmentation import loss_sums
        return loss_sums(output.float(), target, ignore_index=SEG_IGNORE)

    def eval_loss_value(self, spec: TaskSpec, state: Tensor) -> float | None:
        """``loss`` of the whole evaluation set as one batch: CE over all its labelled pixels + 1 - Dice
        from its per-class sums."""
        from foodmtl.tasks.losses.segmentation import loss_from_sums
        return float(loss_from_sums(state)) if state[1] > 0 else None

    def metrics(self, spec: TaskSpec) -> nn.Module:
        from foodmtl.tasks.metrics.segmentation import SegmentationMetrics
        return SegmentationMetrics(spec.num_classes)

    def describe(self, spec: TaskSpec, output: Tensor, context: PredictContext) -> dict:
        """Classes of the predicted mask (upsampled to at least ``PICTURE_SIDE`` px), and its picture."""
        side = max(PICTURE_SIDE, *output.shape[-2:])
        mask = F.interpolate(output[None].float(), size=(side, side), mode="bilinear")[0].argmax(0).cpu().numpy()
        out: dict = {"classes": [spec.classes[k] for k in np.unique(mask)]}
        if context.picture is not None and context.pixels is not None:
            from PIL import Image

            from foodmtl.utils.output import atomic_write
            from foodmtl.viz.overlay import prediction_figure
            pixels = np.asarray(Image.fromarray(context.pixels).resize((side, side), Image.Resampling.BICUBIC))
            picture = prediction_figure(pixels, mask, list(spec.classes))
            atomic_write(context.picture, lambda f: picture.save(f, format="PNG"))  # a full disk: OutputError
            out["overlay"] = str(context.picture)
        return out


def checked_mask(path: str, image_hw: tuple[int, int], num_classes: int) -> np.ndarray:
    """The mask at ``path``; a SampleError naming it when its size or an id does not fit."""
    mask = read_mask(path)
    if mask.shape[:2] != tuple(image_hw):
        raise SampleError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image is "
                          f"{image_hw[1]}x{image_hw[0]}")
    ignore = mask_ignore_value(mask)
    bad = (mask >= num_classes) & (mask != ignore)
    if bad.any():
        raise SampleError(f"mask {path} holds class id {int(mask[bad].max())}, outside 0..{num_classes - 1} "
                          f"(and not the ignore value {ignore})")
    return mask


KIND = Segmentation()
