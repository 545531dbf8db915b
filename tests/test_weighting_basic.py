import math

import pytest
import torch

from foodmtl.utils.registry import UnknownNameError
from foodmtl.weighting import WEIGHTINGS, build_weighting

TASKS = ["dish", "category", "ingredients"]


def losses(**values):
    return {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}


def test_uniform_sums_present_tasks():
    out = build_weighting("uniform", TASKS)(losses(dish=2.0, ingredients=0.5))
    assert out.total.item() == pytest.approx(2.5)
    assert set(out.weights) == {"dish", "ingredients"}


def test_manual_uses_config_weights_and_defaults_to_one():
    out = build_weighting("manual", TASKS, {"weights": {"dish": 2.0, "category": 0.5}})(
        losses(dish=1.0, category=4.0, ingredients=3.0))
    assert out.total.item() == pytest.approx(2.0 + 2.0 + 3.0)


@pytest.mark.parametrize("weights, match", [({"dishh": 1.0}, "dish"), ({"dish": -1.0}, ">= 0")])
def test_manual_rejects_bad_weights(weights, match):
    with pytest.raises((KeyError, ValueError), match=match):
        build_weighting("manual", TASKS, {"weights": weights})


def test_uncertainty_matches_kendall_classification_form():
    strategy = build_weighting("uncertainty", TASKS)
    with torch.no_grad():
        strategy.log_vars["dish"].fill_(0.7)
        strategy.log_vars["category"].fill_(-0.3)
    out = strategy(losses(dish=2.0, category=1.5))
    expected = math.exp(-0.7) * 2.0 + 0.35 + math.exp(0.3) * 1.5 - 0.15
    assert out.total.item() == pytest.approx(expected, rel=1e-6)
    assert float(out.weights["dish"]) == pytest.approx(math.exp(-0.7))
    out.total.backward()
    # d/ds [e^{-s} L + s/2] = -e^{-s} L + 1/2
    assert strategy.log_vars["dish"].grad.item() == pytest.approx(-math.exp(-0.7) * 2.0 + 0.5, rel=1e-6)
    assert strategy.log_vars["ingredients"].grad is None  # absent task: untouched


def test_uncertainty_parameters_are_in_state_dict():
    assert set(build_weighting("uncertainty", TASKS).state_dict()) == {f"log_vars.{t}" for t in TASKS}


def test_unknown_strategy_lists_close_names():
    with pytest.raises(UnknownNameError, match="uncertainty"):
        build_weighting("uncertanity", TASKS)
    assert {"uniform", "manual", "uncertainty"} <= set(WEIGHTINGS.names())


def test_no_present_task_is_an_error():
    with pytest.raises(ValueError, match="no task"):
        build_weighting("uniform", TASKS)({})
