"""Each task kind's loss: masked means over labelled samples, exactly 0 (zero gradient) when none is."""
import torch
import torch.nn.functional as F

from foodmtl.tasks import IGNORE_INDEX, SEG_IGNORE, TaskSpec, get_kind

DISH = TaskSpec("dish", "multiclass", tuple("abcde"))
INGREDIENTS = TaskSpec("ingredients", "multilabel", tuple("wxyz"))
MASS = TaskSpec("mass", "regression", ("g",), {"loss": "l1", "standardize": True}, {"mean": 100.0, "std": 50.0})


def loss(spec, output, target):
    return get_kind(spec.kind).loss(spec, output, target)


def test_multiclass_masks_unlabelled_samples():
    logits = torch.randn(4, 5)
    target = torch.tensor([1, IGNORE_INDEX, 3, IGNORE_INDEX])
    expected = F.cross_entropy(logits[[0, 2]], target[[0, 2]])
    assert torch.allclose(loss(DISH, logits, target), expected)


def test_multiclass_label_smoothing_comes_from_the_task_options():
    logits, target = torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    smoothed = TaskSpec("dish", "multiclass", tuple("abcde"), {"label_smoothing": 0.2})
    assert torch.allclose(loss(smoothed, logits, target), F.cross_entropy(logits, target, label_smoothing=0.2))


def test_multilabel_masks_unlabelled_rows():
    logits = torch.randn(3, 4)
    target = torch.tensor([[1.0, 0, 0, 1], [IGNORE_INDEX] * 4, [0, 1, 1, 0]])
    expected = F.binary_cross_entropy_with_logits(logits[[0, 2]], target[[0, 2]])
    assert torch.allclose(loss(INGREDIENTS, logits, target), expected)


def test_regression_standardises_targets_and_masks_nan():
    output = torch.tensor([[0.5], [9.0], [-1.0]])
    target = torch.tensor([150.0, float("nan"), 25.0])  # standardised: 1.0, -, -1.5
    assert torch.allclose(loss(MASS, output, target), torch.tensor((0.5 + 0.5) / 2))


def test_regression_in_raw_units_with_mse():
    raw = TaskSpec("mass", "regression", ("g",), {"loss": "mse", "standardize": False}, {"mean": 100.0, "std": 50.0})
    output, target = torch.tensor([[110.0], [80.0]]), torch.tensor([100.0, 100.0])
    assert torch.allclose(loss(raw, output, target), torch.tensor((100.0 + 400.0) / 2))


def test_absent_task_gives_zero_loss_and_zero_grad():
    logits = torch.randn(3, 5, requires_grad=True)
    scalar = torch.randn(3, 1, requires_grad=True)
    pixels = torch.randn(3, 5, 4, 4, requires_grad=True)
    seg = TaskSpec("segmentation", "segmentation", tuple("abcde"))
    total = (loss(DISH, logits, torch.full((3,), IGNORE_INDEX))
             + loss(TaskSpec("ingredients", "multilabel", tuple("abcde")), logits, torch.full((3, 5), float(IGNORE_INDEX)))
             + loss(MASS, scalar, torch.full((3,), float("nan")))
             + loss(seg, pixels, torch.full((3, 4, 4), SEG_IGNORE)))
    total.backward()
    assert total.item() == 0.0 and torch.isfinite(total)
    for leaf in (logits, scalar, pixels):
        assert torch.count_nonzero(leaf.grad) == 0 and torch.isfinite(leaf.grad).all()
