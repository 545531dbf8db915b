import pytest
import torch

from foodmtl.engine.metrics import TaskMetrics
from foodmtl.tasks import IGNORE_INDEX, TaskSpec


def test_multiclass_accuracy_ignores_unlabelled_samples():
    spec = TaskSpec("dish", "multiclass", tuple("abcdef"))
    metrics = TaskMetrics([spec])
    ranks = torch.tensor([6.0, 5, 4, 3, 2, 1])  # class 5 always scores lowest
    logits = torch.stack([ranks.roll(i) for i in range(4)])  # argmax 0, 1, 2, 3
    logits[:, 5] = -1.0
    target = torch.tensor([0, 1, 5, IGNORE_INDEX])
    metrics.update({"dish": logits}, {"dish": target})
    out = metrics.compute()
    assert out["dish/top1"] == pytest.approx(2 / 3)
    assert out["dish/top5"] == pytest.approx(2 / 3)  # class 5 has the lowest score: outside the top 5


def test_multilabel_f1_by_hand():
    spec = TaskSpec("ingredients", "multilabel", ("x", "y", "z"))
    metrics = TaskMetrics([spec])
    logits = torch.tensor([[3.0, -3, 3], [3, 3, -3], [-3, -3, -3]])
    target = torch.tensor([[1.0, 0, 0], [1, 1, 1], [IGNORE_INDEX] * 3])
    metrics.update({"ingredients": logits}, {"ingredients": target})
    out = metrics.compute()
    tp, fp, fn = 3, 1, 1  # row 0: tp x, fp z; row 1: tp x y, fn z; row 2 unlabelled
    assert out["ingredients/f1_micro"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
