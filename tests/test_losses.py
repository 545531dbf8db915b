import torch
import torch.nn.functional as F

from foodmtl.engine.losses import multiclass_loss, multilabel_loss
from foodmtl.tasks import IGNORE_INDEX


def test_multiclass_masks_unlabelled_samples():
    logits = torch.randn(4, 5)
    target = torch.tensor([1, IGNORE_INDEX, 3, IGNORE_INDEX])
    expected = F.cross_entropy(logits[[0, 2]], target[[0, 2]])
    assert torch.allclose(multiclass_loss(logits, target), expected)


def test_multilabel_masks_unlabelled_rows():
    logits = torch.randn(3, 4)
    target = torch.tensor([[1.0, 0, 0, 1], [IGNORE_INDEX] * 4, [0, 1, 1, 0]])
    expected = F.binary_cross_entropy_with_logits(logits[[0, 2]], target[[0, 2]])
    assert torch.allclose(multilabel_loss(logits, target), expected)


def test_absent_task_gives_zero_loss_and_zero_grad():
    logits = torch.randn(3, 5, requires_grad=True)
    loss = multiclass_loss(logits, torch.full((3,), IGNORE_INDEX)) + multilabel_loss(
        logits, torch.full((3, 5), float(IGNORE_INDEX)))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(loss)
    assert torch.count_nonzero(logits.grad) == 0
