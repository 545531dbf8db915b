"""Segmentation loss (CE + soft Dice, ignoring unlabelled pixels) and metrics (confusion matrix) against references."""
import math

import pytest
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score,
                                         MulticlassJaccardIndex)

from foodmtl.tasks.losses.segmentation import segmentation_loss
from foodmtl.tasks.metrics.segmentation import SegmentationMetrics
from foodmtl.tasks import SEG_IGNORE

IGNORE = SEG_IGNORE  # the training targets' ignore index (-1)


def random_batch(seed: int, b=2, c=5, h=6, w=7, ignored=0.2, classes=None):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, c, h, w, generator=g)
    target = torch.randint(0, classes or c, (b, h, w), generator=g)
    target[torch.rand(b, h, w, generator=g) < ignored] = IGNORE
    return logits, target


def reference_dice_loss(logits, target, smooth=1.0):
    """Straightforward one-hot formulation of the documented Dice (present classes only)."""
    c = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1).float()
    probs = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=c - 1) * (target != IGNORE), c).permute(0, 3, 1, 2).float() * valid
    predicted = F.one_hot(logits.argmax(1), c).permute(0, 3, 1, 2).float() * valid
    dims = (0, 2, 3)
    dice = (2 * (probs * onehot).sum(dims) + smooth) / (probs.sum(dims) + onehot.sum(dims) + smooth)
    present = (onehot.sum(dims) + predicted.sum(dims)) > 0
    return (1 - dice[present]).mean()


def probs_as_logits(rows):
    """(C, N) probabilities -> logits whose softmax is exactly those probabilities, shape (1, C, 1, N)."""
    return torch.tensor(rows, dtype=torch.float64).log().unsqueeze(0).unsqueeze(2)


# --- loss -------------------------------------------------------------------------------------

def test_no_labelled_pixel_gives_zero_loss_and_zero_gradient():
    logits = torch.randn(2, 4, 5, 5, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((2, 5, 5), IGNORE))
    assert torch.isfinite(loss) and loss.item() == 0.0
    loss.backward()  # the graph is kept
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 0


def test_cross_entropy_part_is_torch_cross_entropy_with_ignore_index():
    logits, target = random_batch(0)
    expected = F.cross_entropy(logits, target, ignore_index=IGNORE)
    torch.testing.assert_close(segmentation_loss(logits, target, dice_weight=0.0), expected)


def test_dice_hand_case():
    # Three labelled pixels (targets 0, 0, 1) and one ignored; argmax predicts 0, 1, 2, so all
    # three classes are present. smooth = 1:
    #   class 0: (2 * (.5 + .25) + 1) / (1 + 2 + 1) = .625
    #   class 1: (2 * .25 + 1) / (1 + 1 + 1) = .5
    #   class 2: (0 + 1) / (1 + 0 + 1) = .5          -> Dice loss = (.375 + .5 + .5) / 3
    logits = probs_as_logits([[.5, .25, .25, .9], [.25, .5, .25, .05], [.25, .25, .5, .05]])
    target = torch.tensor([[[0, 0, 1, IGNORE]]])
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    dice = segmentation_loss(logits, target, dice_weight=1.0) - ce
    assert dice.item() == pytest.approx(1.375 / 3, abs=1e-9)
    doubled = segmentation_loss(logits, target, dice_weight=2.0) - ce
    assert doubled.item() == pytest.approx(2 * 1.375 / 3, abs=1e-9)


def test_dice_leaves_out_classes_absent_from_target_and_prediction():
    # A 4th class that is never the target nor the argmax: its Dice must not enter the average.
    three = probs_as_logits([[.5, .25, .25], [.25, .5, .25], [.25, .25, .5]])
    four = torch.cat([three, torch.full_like(three[:, :1], -60.0)], dim=1)
    target = torch.tensor([[[0, 0, 1]]])
    assert segmentation_loss(four, target).item() == pytest.approx(segmentation_loss(three, target).item(), abs=1e-9)


def test_ignored_pixels_do_not_change_the_loss():
    logits, target = random_batch(1)
    changed = logits.clone()
    changed[(target == IGNORE).unsqueeze(1).expand_as(logits)] = 50.0
    assert segmentation_loss(changed, target).item() == pytest.approx(segmentation_loss(logits, target).item())


def test_loss_matches_one_hot_reference_and_has_gradients():
    logits, target = random_batch(2, c=6, classes=4)  # classes 4 and 5 never in the target
    logits.requires_grad_(True)
    loss = segmentation_loss(logits, target)
    expected = F.cross_entropy(logits, target, ignore_index=IGNORE) + reference_dice_loss(logits, target)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_dice_equals_smp_dice_loss_when_every_class_is_in_the_target():
    logits, target = random_batch(5, c=4, h=8, w=8)
    target[0, 0, :4] = torch.arange(4)  # every class labelled somewhere
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    for smooth in (1.0, 0.1):
        ours = segmentation_loss(logits, target, smooth=smooth) - ce
        smp = DiceLoss("multiclass", smooth=smooth / 2, ignore_index=IGNORE)(logits, target)
        torch.testing.assert_close(ours, smp)


def test_smp_dice_loss_differs_by_design_when_a_class_is_absent():
    # smp scores a class absent from the target 0 and still divides by all C classes; ours
    # averages over the classes in the target or the prediction (docstring of seg_loss.py).
    logits, target = random_batch(6, c=6, h=8, w=8, classes=3)
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    ours = segmentation_loss(logits, target, smooth=1.0) - ce
    smp = DiceLoss("multiclass", smooth=0.5, ignore_index=IGNORE)(logits, target)
    valid = (target != IGNORE).unsqueeze(1).float()
    probs = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=5) * (target != IGNORE), 6).permute(0, 3, 1, 2).float() * valid
    dice = (2 * (probs * onehot).sum((0, 2, 3)) + 1) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1)
    in_target = onehot.sum((0, 2, 3)) > 0
    torch.testing.assert_close(smp, ((1 - dice) * in_target).sum() / 6)
    assert ours.item() > smp.item() * 1.5


# --- metrics ----------------------------------------------------------------------------------

def test_metrics_hand_3x3_case():
    target = torch.tensor([[[0, 0, 1], [1, 1, 2], [IGNORE, 2, 2]]])
    preds = torch.tensor([[[0, 1, 1], [1, 0, 2], [2, 2, 0]]])
    metric = SegmentationMetrics(num_classes=4)  # class 3 in neither: left out of the means
    metric.update(preds, target)
    out = metric.compute()
    # class 0: tp 1, |t| 2, |p| 3 -> IoU 1/4, Dice 2/5; class 1: tp 2, 3, 3 -> 2/4, 4/6;
    # class 2: tp 2, 3, 2 -> 2/3, 4/5; 5 of 8 labelled pixels right.
    assert out["mIoU"].item() == pytest.approx((1 / 4 + 2 / 4 + 2 / 3) / 3)
    assert out["mDice"].item() == pytest.approx((2 / 5 + 4 / 6 + 4 / 5) / 3)
    assert out["pixel_acc"].item() == pytest.approx(5 / 8)


def test_class_only_predicted_counts_as_zero_iou():
    target = torch.zeros(1, 3, 3, dtype=torch.long)
    preds = target.clone()
    preds[0, 0, 0] = 1
    metric = SegmentationMetrics(num_classes=3)
    metric.update(preds, target)
    assert metric.compute()["mIoU"].item() == pytest.approx((8 / 9 + 0) / 2)


def test_metrics_match_torchmetrics_over_several_batches():
    n = 6
    ours = SegmentationMetrics(n)
    reference = {
        "mIoU": MulticlassJaccardIndex(n, average="macro", ignore_index=IGNORE),
        "mDice": MulticlassF1Score(n, average="macro", ignore_index=IGNORE),
        "pixel_acc": MulticlassAccuracy(n, average="micro", ignore_index=IGNORE),
    }
    for seed in range(3):
        logits, target = random_batch(seed, c=n, h=9, w=9, classes=n - 1)
        logits[:, n - 1] = -10.0  # class 5 in neither target nor prediction
        preds = logits.argmax(1)
        ours.update(logits if seed % 2 else preds, target)  # logits and class ids both accepted
        for metric in reference.values():
            metric.update(preds, target)
    out = ours.compute()
    for key, metric in reference.items():
        torch.testing.assert_close(out[key], metric.compute(), msg=key)


def test_confusion_matrix_is_torchmetrics_one():
    logits, target = random_batch(7, c=4, h=9, w=9)
    ours, reference = SegmentationMetrics(4), MulticlassConfusionMatrix(4, ignore_index=IGNORE)
    ours.update(logits, target)
    reference.update(logits.argmax(1), target)
    assert torch.equal(ours.confmat, reference.compute())
    assert ours.confmat.sum() == (target != IGNORE).sum()


def test_states_merge_like_a_ddp_sum():
    logits_a, target_a = random_batch(3)
    logits_b, target_b = random_batch(4)
    whole, part_a, part_b = SegmentationMetrics(5), SegmentationMetrics(5), SegmentationMetrics(5)
    whole.update(logits_a, target_a)
    whole.update(logits_b, target_b)
    part_a.update(logits_a, target_a)
    part_b.update(logits_b, target_b)
    part_a.merge_state(part_b)  # uses the states' dist_reduce_fx, as a DDP sync does
    for key, value in whole.compute().items():
        torch.testing.assert_close(part_a.compute()[key], value)


def test_nothing_labelled_gives_nan():
    metric = SegmentationMetrics(3)
    metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), IGNORE))
    assert all(math.isnan(v.item()) for v in metric.compute().values())


@pytest.mark.parametrize("bad", ["target", "preds"])
def test_out_of_range_class_ids_are_rejected(bad):
    target, preds = torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long)
    {"target": target, "preds": preds}[bad][0, 0, 0] = 3
    with pytest.raises(ValueError, match="0..2"):
        SegmentationMetrics(3).update(preds, target)
