"""`foodmtl plot` figures checked on their content: equal weights stay visible, one y-scale,
integer steps, a caption on what a weight is; validation labels with units and direction, and
the best final mean starred in the metric's direction."""
import numpy as np
import pytest

from foodmtl.cli import main
from foodmtl.errors import ConfigError
from foodmtl.analysis.runs import Run
from foodmtl.analysis.curves import LINESTYLES, MARKERS, metric_label, validation_figure, weights_figure

TASKS = ("dish", "category", "cuisine", "ingredients")
WEIGHTS = {"uniform": (1.0, 1.0, 1.0, 1.0), "manual": (5.0, 2.0, 2.0, 1.0)}


def weight_runs(steps: int = 3) -> list[Run]:
    return [Run(f"{m}-s{seed}", m, "g", seed, {}, {},
                [{"step": s, "epoch": 0, **{f"weight/{t}": w for t, w in zip(TASKS, ws)}} for s in range(1, steps + 1)],
                "-")
            for m, ws in WEIGHTS.items() for seed in (0, 1)]


def test_equal_weights_stay_distinguishable_on_one_y_scale_with_integer_steps():
    fig = weights_figure(weight_runs())
    manual, uniform = fig.axes[:2]                                    # methods A-Z
    assert manual.get_ylim() == uniform.get_ylim()                     # shared y-scale
    for ax in (manual, uniform):
        styles = {(str(line.get_linestyle()), line.get_marker(), line.get_linewidth()) for line in ax.lines}
        assert len(ax.lines) == 4 and len(styles) == 4                 # every task drawn its own way
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)     # 3 steps: no 0.5 ticks
    assert uniform.get_title().splitlines()[1] == "equal: dish = category = cuisine = ingredients"
    assert manual.get_title().splitlines()[1] == "equal: category = cuisine"
    assert [line.get_label() for line in uniform.lines] == list(TASKS)
    assert {line.get_marker() for line in uniform.lines} == set(MARKERS[:4])
    assert "Σ_t w_t ∇L_t" in fig._suptitle.get_text() and "PCGrad" in fig._suptitle.get_text()
    assert len({str(s) for s in LINESTYLES}) >= 4


def test_weights_far_above_one_put_the_shared_axis_on_a_symlog_scale():
    assert weights_figure(weight_runs()).axes[0].get_yscale() == "linear"   # manual's 5 fits a linear scale
    runs = weight_runs() + [Run(f"nashmtl-s{seed}", "nashmtl", "g", seed, {}, {},
                                [{"step": s, "epoch": 0, **{f"weight/{t}": w for t, w in zip(TASKS, (50, 3, 2, 1))}}
                                 for s in (1, 2, 3)], "-") for seed in (0, 1)]
    fig = weights_figure(runs)
    assert {ax.get_yscale() for ax in fig.axes[:3]} == {"symlog"}
    assert "logarithmic above" in fig._suptitle.get_text()


def eval_runs() -> tuple[list[Run], dict]:
    """Two methods x two seeds and a single-task baseline: dish top-1 (a fraction) and mass MAE (grams)."""
    values = {("famo", 0): (0.70, 30.0), ("famo", 1): (0.80, 34.0), ("uniform", 0): (0.60, 20.0),
              ("uniform", 1): (0.62, 26.0)}
    runs = []
    for (method, seed), (top1, mae) in values.items():
        history = [{"step": 10 * (e + 1), "epoch": e, "eval/dish/top1": top1 * (e + 1) / 2,
                    "eval/mass/mae": mae * (2 - e)} for e in range(2)]
        runs.append(Run(f"{method}-s{seed}", method, "g", seed, {}, {}, history, "-", {"mass": "g"}))
    runs.append(Run("single-dish-s0", "single-task (dish)", "g", 0, {}, {},
                    [{"step": 10, "epoch": e, "eval/dish/top1": 0.5 + e / 10} for e in range(2)], "-"))
    return runs, values


def test_validation_labels_units_and_direction_and_stars_the_best_final_mean():
    runs, values = eval_runs()
    fig = validation_figure(runs)
    dish, mass = fig.axes[:2]
    assert dish.get_ylabel() == "top-1 accuracy (%)" and "lower is better" not in dish.get_ylabel()
    assert mass.get_ylabel() == "MAE (g) — lower is better"                     # the unit the runs recorded
    famo_top1 = 100 * np.mean([values["famo", s][0] for s in (0, 1)])            # final epoch e=1: factor 1
    uniform_mae = np.mean([values["uniform", s][1] for s in (0, 1)])             # final epoch e=1: factor 1

    def star(ax):
        (line,) = [line for line in ax.lines if line.get_marker() == "*"]
        return line.get_xdata()[0], line.get_ydata()[0]

    assert star(dish) == pytest.approx((2, famo_top1))       # max of 75 vs 61
    assert star(mass) == pytest.approx((2, uniform_mae))     # min of 32 vs 23
    famo_line = next(line for line in dish.lines if line.get_label() == "famo")
    assert famo_line.get_ydata() == pytest.approx([famo_top1 / 2, famo_top1])  # percent, epochs from 1
    bars = [c for c in dish.containers]                                          # one error bar per method
    xs = [b.lines[0].get_xdata()[0] for b in bars]
    assert len(bars) == 2 and len(set(xs)) == 2 and min(xs) > 2
    spread = 100 * np.std([values["famo", s][0] for s in (0, 1)], ddof=1)
    famo_bar = bars[0].lines[2][0].get_segments()[0]
    assert famo_bar[:, 1] == pytest.approx([famo_top1 - spread, famo_top1 + spread])


def test_metric_labels_follow_the_task_kind():
    assert metric_label("eval/ingredients/mAP", {}) == "mAP (%)"
    assert metric_label("eval/segmentation/mIoU", {}) == "mIoU (%)"
    assert metric_label("eval/calories/mae_pct", {"calories": "kcal"}) == "MAE (% of the mean) — lower is better"
    assert metric_label("eval/calories/mae", {"calories": "kcal"}) == "MAE (kcal) — lower is better"
    assert metric_label("eval/calories/mae", {}) == "MAE (own units) — lower is better"  # a run that recorded none


def test_runs_that_disagree_on_a_unit_are_not_drawn_on_one_axis():
    runs, _ = eval_runs()
    runs[0].units = {"mass": "kg"}
    with pytest.raises(ConfigError, match="give mass in different units"):
        validation_figure(runs)


def test_plot_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["plot", str(tmp_path), "--smooth", "0"]) == 2
    assert main(["plot", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: --smooth 0") and err[1].startswith("error: ") and len(err) == 2
    with pytest.raises(ConfigError, match="no evaluation records"):
        validation_figure(weight_runs())
