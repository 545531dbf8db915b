"""Segmentation loss: pixel cross-entropy + soft multiclass Dice, both over labelled pixels only.

Dice is computed over the whole batch (one score per class from all its pixels)
and averaged over the classes *present*: in the target or in the argmax
prediction of a labelled pixel. Classes that are in neither would score a
near-perfect, smoothing-dominated Dice that dilutes the loss (with 100+ food
classes most are absent from any one batch); a predicted-but-absent class
stays in, so false positives are penalised.

Everything is written as masked sums, so a batch without a single labelled
pixel gives exactly ``logits.sum() * 0`` (0, zero gradient, graph kept) with no
host-device synchronisation to find that out.

Training takes the loss of each batch. The evaluation adds each batch's ``loss_sums`` (CE sum,
labelled pixels, per-class Dice sums) over the whole set and all ranks and computes the loss
once (``loss_from_sums``): the loss of the eval set as one batch, whatever its batching.

Why not segmentation_models_pytorch's ``DiceLoss(mode="multiclass", ignore_index=255)``:
on a batch where every class occurs in the target it is this Dice, its ``smooth`` being half
of ours (our default 1 is its 0.5; tests/test_seg_loss_metrics.py checks the equality), but
otherwise it scores the classes absent from the target as 0 and still divides by all C
classes, so with 104 FoodSeg103 classes and a handful per batch its Dice term shrinks ~20x,
and a class predicted but absent from the target costs nothing there. It also builds a
(B, C, H*W) one-hot target, which the per-class scatter sums here avoid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from foodmtl.tasks import SEG_IGNORE


def segmentation_loss(logits: Tensor, target: Tensor, dice_weight: float = 1.0,
                      ignore_index: int = SEG_IGNORE, smooth: float = 1.0) -> Tensor:
    """CE (mean over labelled pixels) + ``dice_weight`` * (1 - soft Dice); logits (B, C, H, W), target (B, H, W)."""
    valid = target != ignore_index
    per_pixel = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    ce = per_pixel.sum() / valid.sum().clamp(min=1)
    if dice_weight == 0:
        return ce
    return ce + dice_weight * dice_loss(dice_sums(logits, target, valid), smooth)


def loss_sums(logits: Tensor, target: Tensor, ignore_index: int = SEG_IGNORE) -> Tensor:
    """What ``segmentation_loss`` reads from a batch, as float64 sums that add over batches:
    (CE sum, labelled pixels, then ``dice_sums`` flattened), 2 + 4C values."""
    valid = target != ignore_index
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="sum").double()
    return torch.cat([torch.stack([ce, valid.sum().double()]), dice_sums(logits, target, valid).flatten().double()])


def loss_from_sums(sums: Tensor, dice_weight: float = 1.0, smooth: float = 1.0) -> Tensor:
    """``segmentation_loss`` of all the batches whose ``loss_sums`` were added into ``sums``,
    as if they were one batch."""
    return sums[0] / sums[1].clamp(min=1) + dice_weight * dice_loss(sums[2:].view(4, -1), smooth)


def dice_sums(logits: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """(4, C) per class over labelled pixels: soft intersection, probability mass, target pixels,
    pixels predicted (argmax)."""
    num_classes = logits.shape[1]
    weight = valid.unsqueeze(1).to(logits.dtype)
    probs = logits.softmax(dim=1) * weight
    index = target.masked_fill(~valid, 0).unsqueeze(1)  # any class id; its weight is 0
    # Per-class sums by scatter instead of a (B, C, H, W) one-hot target: C times less memory.
    intersection = class_sums(probs.gather(1, index), index, num_classes)
    target_count = class_sums(weight, index, num_classes)
    predicted = class_sums(weight, logits.argmax(dim=1, keepdim=True), num_classes)
    return torch.stack([intersection, probs.sum(dim=(0, 2, 3)), target_count, predicted])


def dice_loss(sums: Tensor, smooth: float) -> Tensor:
    """1 - mean soft Dice over present classes, from ``dice_sums``; 0 when no pixel is labelled."""
    intersection, prob_mass, target_count, predicted = sums
    dice = (2 * intersection + smooth) / (prob_mass + target_count + smooth)
    present = ((target_count + predicted) > 0).to(dice.dtype)
    return ((1 - dice) * present).sum() / present.sum().clamp(min=1)


def class_sums(values: Tensor, index: Tensor, num_classes: int) -> Tensor:
    """Sum of ``values`` (B, 1, H, W) per class id in ``index`` (B, 1, H, W) -> (C,)."""
    out = values.new_zeros(num_classes)
    return out.scatter_add(0, index.flatten(), values.flatten())
