"""Pareto fronts of linear scalarizations: the sweep's weight grid, the front and what it dominates
on hand-made runs (a higher-is-better fraction and a lower-is-better MAE), the figure's data and
file, the table's legend line and CSV column, and one-line errors."""
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.errors import ConfigError
from foodmtl.analysis.pareto import dominates, front, front_dominance, pareto_view, weights_labels
from foodmtl.analysis.pareto_figure import pareto_figure
from foodmtl.analysis.runs import Run, load_group, make_run
from foodmtl.analysis.scalarization import compositions
from foodmtl.analysis.seed_stats import estimate
from foodmtl.analysis.sweep import expand, load_spec
from foodmtl.analysis.tables import runs_frame, summarize

TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"

X, Y = "dish/top1", "mass/mae"
# method -> (weights or None, mean dish top-1, mean mass MAE in g); seeds add -d, 0, +d.
#   front A (80, 40) - B (70, 30) - C (40, 25); D (65, 35) is dominated by B.
#   uniform (60, 32): B dominates it. famo (75, 35): the midpoint of the segment A-B, which no
#   trained point dominates. nashmtl (85, 28): beyond the front.
METHODS = {"scalarization-dish2-mass0": ({"dish": 2.0, "mass": 0.0}, 0.80, 40.0),
           "scalarization-dish1-mass1": ({"dish": 1.0, "mass": 1.0}, 0.70, 30.0),
           "scalarization-dish0-mass2": ({"dish": 0.0, "mass": 2.0}, 0.40, 25.0),
           "scalarization-dish1.5-mass0.5": ({"dish": 1.5, "mass": 0.5}, 0.65, 35.0),
           "uniform": (None, 0.60, 32.0), "famo": (None, 0.75, 35.0), "nashmtl": (None, 0.85, 28.0)}
FRONT = ["scalarization-dish0-mass2", "scalarization-dish1-mass1", "scalarization-dish2-mass0"]  # along x
SEEDS = (0, 1, 2)


def write_run(root, name, seed, tasks, weighting, final):
    folder = root / f"{name}-s{seed}"
    folder.mkdir(parents=True)
    config = {"run": f"{name}-s{seed}", "experiment": "front", "tasks": tasks, "train": {"seed": seed},
              "weighting": weighting}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "summary.json").write_text(json.dumps({"final": final, "units": {"mass": "g"}}))


@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "front"
    for name, (weights, top1, mae) in METHODS.items():
        weighting = {"name": "manual", "options": {"weights": weights}} if weights else {"name": name}
        for seed, d in zip(SEEDS, (-1, 0, 1)):
            write_run(root, name, seed, ["dish", "mass"], weighting, {X: top1 + d / 100, Y: mae + d})
    for seed in SEEDS:
        write_run(root, "single-dish", seed, ["dish"], {"name": "uniform"}, {X: 0.82})
        write_run(root, "single-mass", seed, ["mass"], {"name": "uniform"}, {Y: 27.0})
    return root


def test_dominance_is_at_least_as_good_everywhere_and_better_once_in_each_metrics_direction():
    assert dominates([2, 1], [1, 1], ["max", "max"])
    assert not dominates([1, 1], [1, 1], ["max", "max"])            # equal: neither dominates
    assert dominates([1, 1], [1, 2], ["max", "min"])                # lower MAE is better
    assert not dominates([2, 3], [1, 2], ["max", "min"])            # a trade-off
    assert dominates([3, 1, 5], [3, 2, 5], ["max", "min", "max"])  # k = 3 metrics
    assert not dominates([3, math.nan], [1, 2], ["max", "min"])     # a missing mean claims nothing
    assert not dominates([1, 2], [3, math.nan], ["max", "min"])


def test_front_and_what_it_dominates_by_hand(runs_dir):
    summary = summarize(runs_frame(load_group(str(runs_dir))), [X, Y])
    assert summary.cells["uniform", X].mean == pytest.approx(60)    # percent, as tables show it
    assert front(summary) == FRONT                                  # A-Z, the dominated D left out
    assert front_dominance(summary) == {
        "famo": False, "nashmtl": False, "uniform": True, "scalarization-dish0-mass2": False,
        "scalarization-dish1-mass1": False, "scalarization-dish1.5-mass0.5": True,
        "scalarization-dish2-mass0": False}
    without = summarize(runs_frame([r for r in load_group(str(runs_dir)) if "scalarization" not in r.method]), [X, Y])
    assert front_dominance(without) == {}


def test_pareto_view_holds_each_methods_mean_and_interval_and_the_front_along_x(runs_dir):
    view = pareto_view(load_group(str(runs_dir)), X, Y, "eval")
    assert view.front == FRONT and view.methods == ["famo", "nashmtl", "uniform"]
    assert view.labels["scalarization-dish1.5-mass0.5"] == "dish 1.5, mass 0.5"   # from the runs' config
    assert view.baselines == {"single-task (dish)": [X], "single-task (mass)": [Y]}
    x, y = view.at("uniform")
    assert (x.mean, x.low, x.high) == pytest.approx(tuple(getattr(estimate([59, 60, 61]), k)
                                                          for k in ("mean", "low", "high")))
    assert (y.mean, y.low, y.high) == pytest.approx(tuple(getattr(estimate([31, 32, 33]), k)
                                                          for k in ("mean", "low", "high")))
    assert view.dominated["uniform"] and not view.dominated["famo"]
    ax = pareto_figure(view).axes[0]
    assert ax.get_xlabel() == "dish: top-1 accuracy (%)"
    assert ax.get_ylabel() == "mass: MAE (g) — lower is better"
    line = next(line for line in ax.lines if line.get_label() == "scalarization front")
    assert list(line.get_xdata()) == pytest.approx([40, 70, 80]) and list(line.get_ydata()) == pytest.approx([25, 30, 40])
    assert "uniform (dominated)" in ax.get_legend_handles_labels()[1]
    better = next(t for t in ax.texts if t.get_text() == "better")
    assert better.xy[0] > better.xyann[0] and better.xy[1] < better.xyann[1]  # top-1: right, MAE: down


def test_plot_pareto_writes_a_png(runs_dir, tmp_path, capsys):
    assert main(["plot", str(runs_dir), "--out", str(tmp_path / "img"), "--pareto", X, Y]) == 0
    path = tmp_path / "img" / "front-pareto.png"
    assert capsys.readouterr().out.strip() == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "img" / "front-validation.png").exists()  # --pareto draws the front only


def test_plot_pareto_without_points_draws_the_methods_and_says_so(runs_dir, tmp_path, capsys):
    for folder in runs_dir.glob("scalarization-*"):
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    assert main(["plot", str(runs_dir), "--out", str(tmp_path), "--pareto", X, Y]) == 0
    assert "note: No scalarization runs" in capsys.readouterr().err
    assert (tmp_path / "front-pareto.png").is_file()


@pytest.mark.parametrize("metrics, message", [
    ((X, "mass/mse"), "unknown metric 'mass/mse'; did you mean: mass/mae?"),
    ((X, X), "name two different metrics")])
def test_a_bad_metric_is_one_error_line(runs_dir, tmp_path, capsys, metrics, message):
    assert main(["plot", str(runs_dir), "--out", str(tmp_path), "--pareto", *metrics]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and message in err


def test_table_legend_and_csv_say_what_the_front_dominates(runs_dir, tmp_path, capsys):
    assert main(["table", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert ("- Front: the 3 of 4 scalarization-* methods (fixed manual weights) that no other dominates on the means "
            "of the 2 metric columns (at least as good on every column, better on one). It dominates uniform; not "
            "famo, nashmtl.") in out.splitlines()
    assert "| scalarization-dish1-mass1 | 70.00 ± 1.00" in out           # the points are rows like any method
    assert main(["table", str(runs_dir), "--format", "latex"]) == 0
    assert "% Front: the 3 of 4 scalarization-* methods" in capsys.readouterr().out
    assert main(["table", str(runs_dir), "--format", "csv", "--out", str(tmp_path / "t.csv")]) == 0
    frame = pd.read_csv(tmp_path / "t.csv")
    marks = frame[frame["value"] == X].set_index("method")["front_dominates"]
    assert marks.isna()["single-task (dish)"]                            # baselines get no mark
    assert marks.drop("single-task (dish)").astype(bool).to_dict() == {
        "famo": False, "nashmtl": False, "scalarization-dish0-mass2": False, "scalarization-dish1-mass1": False,
        "scalarization-dish1.5-mass0.5": True, "scalarization-dish2-mass0": False, "uniform": True}


def test_a_table_without_scalarization_runs_has_no_front(runs_dir, capsys):
    assert main(["table", str(runs_dir), "--where", "weighting.name=famo"]) == 0
    assert "Front:" not in capsys.readouterr().out


def write_sweep(tmp_path, scalarization, methods=None):
    spec = {"base": str(TINY), "group": "front", "seeds": [0, 1], "methods": methods or {},
            "overrides": [f"output_dir={tmp_path}/runs", "tasks=[dish, ingredients, cuisine]"],
            "scalarization": scalarization}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_scalarization_sweep_runs_each_weight_vector_with_manual_weighting_for_every_seed(tmp_path):
    runs = expand(load_spec(write_sweep(tmp_path, {"weights": [{"dish": 1, "ingredients": 0.25, "cuisine": 0},
                                                               {"dish": 0, "ingredients": 3, "cuisine": 1}]},
                                        {"uniform": ["weighting.name=uniform"]})))
    assert [r.name for r in runs] == ["uniform-s0", "uniform-s1", "scalarization-dish1-ingredients0.25-cuisine0-s0",
                                      "scalarization-dish1-ingredients0.25-cuisine0-s1",
                                      "scalarization-dish0-ingredients3-cuisine1-s0",
                                      "scalarization-dish0-ingredients3-cuisine1-s1"]
    cfg = load_config(runs[3].args[0], runs[3].args[1:])
    assert cfg.weighting.name == "manual" and cfg.train.seed == 1
    assert cfg.weighting.options == {"weights": {"dish": 1.0, "ingredients": 0.25, "cuisine": 0.0}}


def test_simplex_spaces_the_named_tasks_weights_evenly_summing_to_their_count(tmp_path):
    runs = expand(load_spec(write_sweep(tmp_path, {"simplex": {"steps": 4, "tasks": ["ingredients", "dish"]}})))
    weights = [load_config(r.args[0], r.args[1:]).weighting.options["weights"] for r in runs[::2]]
    assert [(w["ingredients"], w["dish"], w["cuisine"]) for w in weights] == [
        (2, 0, 1), (1.5, 0.5, 1), (1, 1, 1), (0.5, 1.5, 1), (0, 2, 1)]    # cuisine, not named, keeps 1
    assert runs[2].name == "scalarization-dish0.5-ingredients1.5-cuisine1-s0"
    assert len(expand(load_spec(write_sweep(tmp_path, {"simplex": {"steps": 2}})))) == 2 * 6   # all three tasks
    assert sorted(compositions(2, 3)) == sorted({(2, 0, 0), (0, 2, 0), (0, 0, 2), (1, 1, 0), (1, 0, 1), (0, 1, 1)})


@pytest.mark.parametrize("scalarization, message", [
    ({"weights": [{"dish": 1, "ingredients": -0.5, "cuisine": 1}]}, "ingredients=-0.5 must be a finite number >= 0"),
    ({"weights": [{"dish": 1, "ingredient": 1, "cuisine": 1}]}, "unknown task in scalarization weights 'ingredient'"),
    ({"weights": [{"dish": 1, "cuisine": 1}]}, "leave out ingredients: name every task of the runs"),
    ({"weights": [{"dish": 0, "ingredients": 0, "cuisine": 0}]}, "at least one weight must be > 0"),
    ({"weights": [{"dish": 1, "ingredients": 1, "cuisine": 1}, {"dish": 1.0, "ingredients": 1, "cuisine": 1}]},
     "repeat a vector"),
    ({"simplex": {"steps": 0}}, "steps (a whole number >= 1)"),
    ({"simplex": {"steps": 2, "tasks": "dish"}}, "optionally tasks (a list)"),
    ({"simplex": {"steps": 2, "tasks": ["dish"]}}, "name at least two different tasks"),
    ({"grid": 3}, "scalarization takes one of weights")])
def test_bad_scalarization_is_one_error_line_before_any_run(tmp_path, capsys, scalarization, message):
    assert main(["sweep", str(write_sweep(tmp_path, scalarization)), "--emit", "torchrun"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and message in err


def test_a_method_named_like_a_point_is_refused(tmp_path):
    path = write_sweep(tmp_path, {"simplex": {"steps": 1, "tasks": ["dish", "cuisine"]}},
                       {"scalarization-dish2-ingredients1-cuisine0": ["weighting.name=uniform"]})
    with pytest.raises(ConfigError, match="is also a scalarization point"):
        expand(load_spec(path))


def test_point_labels_name_only_the_weights_that_vary_between_points():
    def point(weights: dict) -> Run:
        name = "scalarization-" + "-".join(f"{t}{w:g}" for t, w in weights.items())
        return make_run({"run": f"{name}-s0", "train": {"seed": 0}, "tasks": list(weights),
                         "weighting": {"name": "manual", "options": {"weights": weights}}}, {}, [], "here")
    runs = [point({"dish": 1.5, "category": 1, "ingredients": 0.5}), point({"dish": 1, "category": 1, "ingredients": 1})]
    assert weights_labels([r.method for r in runs], runs) == {
        "scalarization-dish1.5-category1-ingredients0.5": "dish 1.5, ingredients 0.5",
        "scalarization-dish1-category1-ingredients1": "dish 1, ingredients 1"}
    assert weights_labels([runs[0].method], runs[:1]) == {runs[0].method: "dish 1.5, category 1, ingredients 0.5"}
