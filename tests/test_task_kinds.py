"""Task kinds: each one file, checked against references; old checkpoints keep their layout."""
import json
import math
from pathlib import Path

import pytest
import torch
from torchmetrics.regression import MeanAbsoluteError

from foodmtl.errors import ConfigError
from foodmtl.data.builder import build_tasks
from foodmtl.engine.checkpoint import save_checkpoint
from foodmtl.engine.inference import load_trained
from foodmtl.engine.metrics import TaskMetrics
from foodmtl.engine.objective import Objective
from foodmtl.utils.registry import UnknownNameError
from foodmtl.tasks import IGNORE_INDEX, KIND_NAMES, TaskSpec, get_kind, metric_direction
from foodmtl.weighting import build_weighting

FIXTURE = Path(__file__).parent / "fixtures" / "v1_checkpoint_layout.json"


def test_a_checkpoint_written_before_task_kinds_loads_with_the_same_layout(tmp_path):
    """The fixture lists every tensor (name and shape) of a checkpoint written by the code before
    task kinds existed (its config and task table as saved); the new code builds exactly that."""
    layout = json.loads(FIXTURE.read_text())
    objective = {name: torch.zeros(shape, dtype=torch.long if name.endswith("num_batches_tracked") else torch.float)
                 for name, shape in layout["objective"].items()}
    path = tmp_path / "best.pt"
    save_checkpoint({"objective": objective, "config": layout["config"], "tasks": layout["tasks"]}, path)
    model, cfg, tasks = load_trained(path)
    assert [t.name for t in tasks] == [t["name"] for t in layout["tasks"]]
    weighting = build_weighting(cfg.weighting.name, [t.name for t in tasks], cfg.weighting.options)
    rebuilt = {k: list(v.shape) for k, v in Objective(model, weighting).state_dict().items()}
    assert rebuilt == layout["objective"]


def test_every_kind_declares_metric_directions_that_metric_direction_reads():
    for name in KIND_NAMES:
        kind = get_kind(name)
        assert kind.name == name and kind.primary_metric in kind.metrics_directions
    assert metric_direction("eval/mass/mae") == "min" and metric_direction("dish/top1") == "max"
    assert metric_direction("train/loss/dish") == "min" and metric_direction("segmentation/mIoU") == "max"


def test_multiclass_reports_top3_only_with_more_than_three_classes():
    four, three = TaskSpec("dish", "multiclass", tuple("abcd")), TaskSpec("cuisine", "multiclass", tuple("abc"))
    assert "top3" in get_kind("multiclass").metric_names(four)
    assert "top3" not in get_kind("multiclass").metric_names(three)
    metrics = TaskMetrics([four, three])
    logits = torch.tensor([[4.0, 3, 2, 1], [1, 2, 3, 4], [4, 1, 2, 3]])
    targets = {"dish": torch.tensor([2, 0, IGNORE_INDEX]), "cuisine": torch.tensor([0, 1, 2])}
    metrics.update({"dish": logits, "cuisine": logits[:, :3]}, targets)
    out = metrics.compute()
    # sample 0: class 2 is third -> in top 3, not top 1; sample 1: class 0 is last -> outside top 3
    assert out["dish/top3"] == pytest.approx(0.5) and out["dish/top1"] == 0.0
    assert set(out) == {f"dish/{m}" for m in ("top1", "top3", "f1_macro")} | {"cuisine/top1", "cuisine/f1_macro"}


def test_a_multiclass_task_with_one_class_is_a_config_error():
    with pytest.raises(ConfigError, match="category.*at least 2"):
        build_tasks(["category"], {"category": ["soup"]})


def test_unknown_task_options_are_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: loss, standardize"):
        build_tasks(["mass"], {"mass": ["g"]}, {"mass": {"los": "l1"}})
    with pytest.raises(ConfigError, match="choose one of l1, smooth_l1, mse"):
        build_tasks(["mass"], {"mass": ["g"]}, {"mass": {"loss": "huber"}})


def test_options_of_a_task_this_run_does_not_train_are_checked_and_left_unused():
    """A single-task baseline swept from a multi-task config keeps the other tasks' options."""
    (spec,) = build_tasks(["dish"], {"dish": ["a", "b"]}, {"mass": {"standardize": False, "loss": "mse"}})
    assert spec.name == "dish"
    with pytest.raises(ConfigError, match="valid: loss, standardize"):
        build_tasks(["dish"], {"dish": ["a", "b"]}, {"mass": {"los": "l1"}})
    with pytest.raises(UnknownNameError, match="masss"):
        build_tasks(["dish"], {"dish": ["a", "b"]}, {"masss": {"loss": "l1"}})


def test_regression_metrics_in_original_units_match_torchmetrics():
    spec = TaskSpec("mass", "regression", ("g",), {"loss": "l1", "standardize": True}, {"mean": 200.0, "std": 40.0})
    metrics = TaskMetrics([spec])
    output = torch.tensor([[0.5], [-1.0], [2.0], [0.0]])          # 220, 160, 280, 200 g
    target = torch.tensor([210.0, 150.0, float("nan"), 260.0])
    metrics.update({"mass": output}, {"mass": target})
    out = metrics.compute()
    reference = MeanAbsoluteError()(torch.tensor([220.0, 160.0, 200.0]), torch.tensor([210.0, 150.0, 260.0]))
    assert out["mass/mae"] == pytest.approx(float(reference))                     # (10 + 10 + 60) / 3
    assert out["mass/mae_pct"] == pytest.approx(100 * (80 / 3) / ((210 + 150 + 260) / 3))


def test_regression_fit_uses_labelled_training_values_and_predicts_in_units():
    import pandas as pd

    kind = get_kind("regression")
    spec = kind.fit(TaskSpec("calories", "regression", ("kcal",), {"standardize": True}),
                    pd.Series([100.0, None, 300.0]))
    assert spec.stats == {"mean": 200.0, "std": 100.0}
    from foodmtl.tasks.base import PredictContext
    assert kind.describe(spec, torch.tensor([1.5]), PredictContext()) == {"value": 350.0, "unit": "kcal"}


@pytest.mark.parametrize("kind, factor", [("regression", 0.5), ("multiclass", 1.0)])
def test_uncertainty_uses_each_kinds_likelihood(kind, factor):
    """Kendall et al. 2018: d/ds [f e^{-s} L + s/2] = -f e^{-s} L + 1/2 and d/dL = f e^{-s}."""
    strategy = build_weighting("uncertainty", ["t"], {"init": 0.3}, {"t": get_kind(kind).likelihood})
    loss = torch.tensor(2.0, requires_grad=True)
    out = strategy({"t": loss})
    out.total.backward()
    s = 0.3
    assert out.total.item() == pytest.approx(factor * math.exp(-s) * 2.0 + s / 2)
    assert loss.grad.item() == pytest.approx(factor * math.exp(-s))
    assert strategy.log_vars["t"].grad.item() == pytest.approx(-factor * math.exp(-s) * 2.0 + 0.5)
    assert float(out.weights["t"]) == pytest.approx(factor * math.exp(-s))


def test_kinds_declare_which_metrics_are_fractions():
    from foodmtl.tasks import metric_is_fraction

    assert metric_is_fraction("eval/dish/top1") and metric_is_fraction("segmentation/mIoU")
    assert not metric_is_fraction("mass/mae") and not metric_is_fraction("calories/mae_pct")
