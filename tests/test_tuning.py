"""The tuning stage of a sweep: seeded draws with an equal budget per method, selection on validation
(Δm% against tuned baselines, or a metric) from hand-written trial figures, tuning.json and the test
runs' selection record, weighting.lr, and the table's account of how each method was chosen."""
import json
import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from foodmtl.analysis.search_space import override, parse_space, trials
from foodmtl.analysis.pools import WarmPool
from foodmtl.analysis.sweep import load_spec
from foodmtl.analysis.tuning import candidates, plan_trials, stage_runs, tune_spec
from foodmtl.cli import main
from foodmtl.config import OptimConfig, load_config, save_config, to_dict
from foodmtl.engine.optim import strategy_groups
from foodmtl.errors import ConfigError, UnknownNameError
from foodmtl.weighting import build_weighting

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
TINY_TUNED = ROOT / "experiments" / "ablations" / "tiny_tuned.yaml"
SPACE = {"optim.lr": {"log": [1.0e-4, 1.0e-2]}, "optim.weight_decay": [0.0, 0.05],
         "weighting.options.T": {"uniform": [1.0, 4.0]}, "weighting.options.update_every": {"int": [1, 5]}}


def write_spec(folder: Path, tune: dict, methods: dict | None = None, single_task=("dish", "mass"),
               overrides: tuple = ()) -> Path:
    spec = {"base": str(TINY), "group": "abl", "seeds": [0, 1],
            "overrides": [f"output_dir={folder}/runs", "tasks=[dish,mass]", *overrides],
            "methods": methods or {"uniform": ["weighting.name=uniform"], "uncertainty": ["weighting.name=uncertainty"]},
            "single_task": list(single_task), "tune": tune}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_draws_are_a_pure_function_of_seed_method_and_trial_and_stay_in_their_range():
    space = parse_space(SPACE, "tune.space")
    draws = trials(space, 8, "random", 0, "uniform")
    assert len(draws) == 8 and draws == trials(space, 8, "random", 0, "uniform")
    assert trials(space, 12, "random", 0, "uniform")[:8] == draws  # more trials keep the first ones
    assert trials(space, 8, "random", 0, "cagrad") != draws and trials(space, 8, "random", 1, "uniform") != draws
    assert all(1e-4 <= d["optim.lr"] <= 1e-2 and d["optim.weight_decay"] in (0.0, 0.05) and 1 <= d["weighting.options.T"]
               <= 4 and isinstance(d["weighting.options.update_every"], int) for d in draws)
    assert len({d["optim.lr"] for d in draws}) == 8
    assert all(float(f"{d['optim.lr']:.3g}") == d["optim.lr"] for d in draws)  # 3 significant digits
    fewer = {k: v for k, v in space.items() if k != "optim.weight_decay"}
    assert [d["optim.lr"] for d in trials(fewer, 8, "random", 0, "uniform")] == [d["optim.lr"] for d in draws]


def test_every_method_and_baseline_gets_the_same_number_of_trials_and_adding_one_changes_no_other(tmp_path):
    tune = {"trials": 3, "seeds": [5, 6], "space": {"optim.lr": {"log": [1.0e-4, 1.0e-2]}},
            "methods": {"uncertainty": {"weighting.lr": [0.01, 0.1]}}}
    spec = load_spec(write_spec(tmp_path, tune))
    planned = plan_trials(spec, tune_spec(spec))
    assert [t.run.name for t in planned[:6]] == ["uniform-t0-s5", "uniform-t0-s6", "uniform-t1-s5", "uniform-t1-s6",
                                                  "uniform-t2-s5", "uniform-t2-s6"]
    per = {c: len({t.index for t in planned if t.candidate == c}) for c in candidates(spec)}
    assert per == {"uniform": 3, "uncertainty": 3, "single-dish": 3, "single-mass": 3}
    assert {tuple(t.values) for t in planned if t.candidate == "uncertainty"} == {("optim.lr", "weighting.lr")}
    trial = planned[0]
    cfg = load_config(trial.run.args[0], trial.run.args[1:])
    assert cfg.optim.lr == trial.values["optim.lr"] and cfg.train.seed == 5
    assert (cfg.data.eval_split, cfg.data.test_split) == ("val", None)  # trials never look at the test split
    assert cfg.experiment == cfg.tracking.group == "abl-tune" and trial.run.folder == tmp_path / "runs" / "abl-tune" / \
        "uniform-t0-s5"
    more = write_spec(tmp_path, tune, {"uniform": ["weighting.name=uniform"], "rlw": ["weighting.name=rlw"],
                                       "uncertainty": ["weighting.name=uncertainty"]})
    spec = load_spec(more)
    again = {t.run.name: t.values for t in plan_trials(spec, tune_spec(spec))}
    assert all(again[t.run.name] == t.values for t in planned)


def test_scalarization_points_are_tuned_with_the_same_budget_their_weights_fixed(tmp_path):
    path = write_spec(tmp_path, {"trials": 2, "seeds": [5], "space": {"optim.lr": {"log": [1.0e-4, 1.0e-2]}}},
                      {"uniform": ["weighting.name=uniform"]})
    raw = yaml.safe_load(path.read_text()) | {"scalarization": {"simplex": {"steps": 1}}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(path)
    points = [c for c in candidates(spec) if c.startswith("scalarization-")]
    assert len(points) == 2 and list(candidates(spec))[-2:] == ["single-dish", "single-mass"]
    planned = plan_trials(spec, tune_spec(spec))
    assert {c: sum(t.candidate == c for t in planned) for c in candidates(spec)} == dict.fromkeys(candidates(spec), 2)
    trial = next(t for t in planned if t.candidate == points[0])
    cfg = load_config(trial.run.args[0], trial.run.args[1:])
    assert cfg.weighting.name == "manual" and set(cfg.weighting.options["weights"]) == {"dish", "mass"}
    assert set(trial.values) == {"optim.lr"}   # the weights are the point's, only the shared space is drawn


def test_grid_must_have_exactly_the_trials_and_only_choices(tmp_path):
    space = parse_space({"optim.lr": [0.001, 0.01], "optim.weight_decay": [0.0, 0.05]}, "tune.space")
    assert trials(space, 4, "grid", 0, "uniform") == [
        {"optim.lr": a, "optim.weight_decay": b} for a in (0.001, 0.01) for b in (0.0, 0.05)]
    with pytest.raises(ConfigError, match="cagrad's grid has 4 points, tune.trials=3"):
        trials(space, 3, "grid", 0, "cagrad")
    with pytest.raises(ConfigError, match="optim.lr is a range"):
        trials(parse_space({"optim.lr": {"log": [1e-3, 1e-2]}}, "s"), 1, "grid", 0, "uniform")
    for bad in ({"log": [0.0, 1.0]}, {"uniform": [2, 1]}, {"normal": [0, 1]}, [], 0.1):
        with pytest.raises(ConfigError, match="tune.space.optim.lr"):
            parse_space({"optim.lr": bad}, "tune.space")
    spec = load_spec(write_spec(tmp_path, {"trials": 2, "seeds": [0], "methods": {"cagrd": {}}}))
    with pytest.raises(UnknownNameError, match="unknown tune.methods entry 'cagrd'"):
        tune_spec(spec)
    spec = load_spec(write_spec(tmp_path, {"trials": 2, "seeds": [0]}, single_task=()))
    with pytest.raises(ConfigError, match="select=dm needs single-task baselines"):
        tune_spec(spec)


def test_overrides_read_back_as_the_values_drawn():
    values = {"optim.lr": 1.0e-5, "weighting.options.c": 2.5e-07, "weighting.name": "cagrad",
              "weighting.options.weights": {"dish": 0.3, "mass": 2}}
    cfg = load_config(TINY, [override(k, v) for k, v in values.items()])
    assert cfg.optim.lr == 1e-5 and cfg.weighting.options == {"c": 2.5e-07, "weights": {"dish": 0.3, "mass": 2}}
    assert override("optim.lr", 1e-5) == "optim.lr=1.0e-05"  # YAML 1.1 reads 1e-05 as text


def finish(trial, final: dict) -> None:
    """A trial run folder holding what a finished run leaves: its config.yaml, and a summary.json with
    these validation figures."""
    trial.run.folder.mkdir(parents=True, exist_ok=True)
    save_config(load_config(trial.run.args[0], trial.run.args[1:]), trial.run.folder / "config.yaml")
    (trial.run.folder / "summary.json").write_text(json.dumps({"final": final, "steps": 1}))


# Validation figures per (candidate, trial, seed): dish top-1 (higher is better), mass MAE (lower is better)
# and dish top-5, which Δm% leaves out (not a table's default column).
FIGURES = {("single-dish", 0): [{"dish/top1": 0.5, "dish/top5": 0.9}] * 2,
           ("single-dish", 1): [{"dish/top1": 0.6, "dish/top5": 0.9}, {"dish/top1": 0.8, "dish/top5": 0.9}],
           ("single-mass", 0): [{"mass/mae": 10.0}] * 2,
           ("single-mass", 1): [{"mass/mae": 20.0}] * 2,
           ("uniform", 0): [{"dish/top1": 0.7, "dish/top5": 0.1, "mass/mae": 12.0}] * 2,
           ("uniform", 1): [{"dish/top1": 0.80, "dish/top5": 0.1, "mass/mae": 10.0},
                            {"dish/top1": 0.88, "dish/top5": 0.1, "mass/mae": 10.0}],
           ("uncertainty", 0): [{"dish/top1": math.nan, "mass/mae": 1.0}] * 2,  # diverged: the worst
           ("uncertainty", 1): [{"dish/top1": 0.35, "dish/top5": 0.9, "mass/mae": 10.0}] * 2}


@pytest.fixture
def finished(tmp_path):
    """A tuned sweep (2 trials x seeds 7, 8) whose trials all finished with FIGURES."""
    def make(select="dm"):
        path = write_spec(tmp_path, {"trials": 2, "seeds": [7, 8], "select": select,
                                     "space": {"optim.lr": {"log": [1.0e-3, 1.0e-2]}}})
        spec = load_spec(path)
        planned = plan_trials(spec, tune_spec(spec))
        for trial in planned:
            finish(trial, FIGURES[trial.candidate, trial.index][[7, 8].index(int(trial.run.name[-1]))])
        return path, planned
    return make


def test_dm_selection_tunes_the_baselines_first_then_each_method_by_delta_m(finished, tmp_path):
    path, planned = finished()
    runs = stage_runs(load_spec(path), "test")
    record = json.loads((tmp_path / "runs" / "abl" / "tuning.json").read_text())
    assert record["baselines"] == {"dish/top1": pytest.approx(0.7), "mass/mae": 10.0}  # t1 (mean of 0.6, 0.8), t0
    chosen = record["methods"]
    assert (chosen["single-dish"]["trial"], chosen["single-dish"]["criterion"]) == (1, "dish/top1")
    assert (chosen["single-mass"]["trial"], chosen["single-mass"]["criterion"]) == (0, "mass/mae")
    # Δm = 100/2 [(M_dish - 0.7)/0.7 - (M_mass - 10)/10]: uniform t0 (0.7, 12) -10, t1 (0.84, 10) +10
    assert chosen["uniform"]["scores"] == pytest.approx([-10.0, 10.0]) and chosen["uniform"]["trial"] == 1
    # uncertainty t0 has no finite dish figure: no score, never chosen over t1's (0.35, 10) -25
    assert chosen["uncertainty"]["scores"][0] is None and chosen["uncertainty"]["trial"] == 1
    assert chosen["uncertainty"]["score"] == pytest.approx(-25.0)
    values = {(t.candidate, t.index): t.values for t in planned}
    assert chosen["uniform"]["overrides"] == values["uniform", 1]
    assert [r.name for r in runs] == ["uniform-s0", "uniform-s1", "uncertainty-s0", "uncertainty-s1",
                                      "single-dish-s0", "single-dish-s1", "single-mass-s0", "single-mass-s1"]
    cfg = load_config(runs[0].args[0], runs[0].args[1:])
    assert cfg.optim.lr == values["uniform", 1]["optim.lr"] and cfg.experiment == "abl" and cfg.train.seed == 0
    assert (cfg.data.eval_split, cfg.data.test_split) == ("val", "test")
    assert cfg.selection == {"criterion": "dm", "split": "val", "sampler": "random", "trials": 2, "seeds": [7, 8],
                             "selected": values["uniform", 1], "tuning": str(tmp_path / "runs" / "abl" / "tuning.json")}
    single = load_config(runs[-1].args[0], runs[-1].args[1:])
    assert single.tasks == ["mass"] and single.selection["criterion"] == "mass/mae"


def test_metric_selection_follows_the_metrics_direction(finished):
    path, _ = finished("mass/mae")
    stage_runs(load_spec(path), "test")
    record = json.loads((path.parent / "runs" / "abl" / "tuning.json").read_text())
    assert record["methods"]["uniform"]["trial"] == 1  # MAE 10 < 12: lower is better
    assert record["methods"]["uncertainty"]["trial"] == 0  # MAE 1 (its dish figure does not matter here)
    path, _ = finished("dish/top5")
    stage_runs(load_spec(path), "test")
    record = json.loads((path.parent / "runs" / "abl" / "tuning.json").read_text())
    assert record["methods"]["uncertainty"]["trial"] == 1 and record["methods"]["uncertainty"]["scores"][0] is None
    path, _ = finished("dish/top7")
    with pytest.raises(ConfigError, match="dish/top7 is not among the trials' validation metrics"):
        stage_runs(load_spec(path), "test")


def test_test_stage_refuses_until_every_trial_finished_and_a_rerun_of_tune_skips_them(finished, tmp_path, capsys,
                                                                                        monkeypatch):
    path, planned = finished()
    (planned[3].run.folder / "summary.json").unlink()
    assert main(["sweep", str(path), "--stage", "test", "--emit", "torchrun"]) == 2
    assert f"1 of {len(planned)} tuning trials have not finished ({planned[3].run.name})" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "abl" / "tuning.json").exists()
    finish(planned[3], FIGURES[planned[3].candidate, planned[3].index][1])

    def no_training(*args, **kwargs):
        raise AssertionError("a finished trial was trained again")

    monkeypatch.setattr(subprocess, "Popen", no_training)
    assert main(["sweep", str(path), "--stage", "tune"]) == 0
    assert main(["sweep", str(path), "--stage", "test", "--emit", "torchrun"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 8 and (tmp_path / "runs" / "abl" / "tuning.json").is_file()
    assert main(["sweep", str(path), "--emit", "slurm"]) == 2
    assert "one stage at a time" in capsys.readouterr().err


def test_emitted_stages_keep_their_own_wandb_group_and_stage(finished, capsys):
    import sweeps  # wandb[sweeps]: the sweep-config schema wandb checks

    path, _ = finished()
    assert main(["sweep", str(path), "--stage", "tune", "--emit", "wandb"]) == 0
    sweep = yaml.safe_load(capsys.readouterr().out)
    assert sweeps.schema_violations_from_proposed_config(sweep) == []
    assert sweep["name"] == "abl-tune" and sweep["command"][-3:] == ["--stage", "tune", "${args}"]
    assert len(sweep["parameters"]["run"]["values"]) == 16
    assert main(["sweep", str(path), "--stage", "test", "--emit", "wandb"]) == 0
    sweep = yaml.safe_load(capsys.readouterr().out)
    assert sweep["name"] == "abl" and sweep["parameters"]["run"]["values"][0] == "uniform-s0"


def test_stage_needs_a_tune_section(tmp_path, capsys):
    spec = {"base": str(TINY), "group": "abl", "seeds": [0], "methods": {"uniform": []}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(tmp_path / "s.yaml"), "--stage", "tune", "--emit", "torchrun"]) == 2
    assert "has no tune: section" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["uncertainty", "gradnorm"])
def test_weighting_lr_is_the_lr_of_the_strategys_parameter_group(name):
    optim = OptimConfig(lr=1e-3)
    assert strategy_groups(SimpleNamespace(weighting=build_weighting(name, ["a", "b"], lr=0.1)), optim)[0]["lr"] == 0.1
    assert strategy_groups(SimpleNamespace(weighting=build_weighting(name, ["a", "b"])), optim)[0]["lr"] == 1e-3


def test_weighting_lr_is_famos_own_lr_and_refused_where_nothing_is_learned():
    assert build_weighting("famo", ["a", "b"], lr=0.2).lr == 0.2
    assert build_weighting("famo", ["a", "b"], {"lr": 0.3}).lr == 0.3
    with pytest.raises(ConfigError, match="weighting.lr=0.2 and weighting.options.lr=0.3 both set famo's"):
        build_weighting("famo", ["a", "b"], {"lr": 0.3}, lr=0.2)
    with pytest.raises(ConfigError, match="uniform learns no parameters"):
        build_weighting("uniform", ["a", "b"], lr=0.1)
    with pytest.raises(ConfigError, match="weighting.lr=0.0 must be > 0"):
        load_config(TINY, ["weighting.lr=0"])


def write_run(folder: Path, name: str, tasks: list[str], final: dict, selection: dict | None = None) -> None:
    seed = int(name.rsplit("-s", 1)[1])
    cfg = load_config(TINY, [f"run={name}", "experiment=abl", f"tasks=[{','.join(tasks)}]", f"train.seed={seed}",
                             *([override("selection", selection)] if selection else [])])
    (folder / name).mkdir(parents=True)
    (folder / name / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    (folder / name / "summary.json").write_text(json.dumps({"final": final}))


def selection(criterion: str, lr: float, trials: int = 4) -> dict:
    return {"criterion": criterion, "split": "val", "sampler": "random", "trials": trials, "seeds": [7],
            "selected": {"optim.lr": lr}, "tuning": "runs/abl/tuning.json"}


def test_table_says_how_each_method_was_chosen_and_refuses_tuned_with_untuned(tmp_path, capsys):
    runs = tmp_path / "abl"
    for seed in (0, 1):
        write_run(runs, f"uniform-s{seed}", ["dish", "cuisine"], {"dish/top1": 0.5 + seed / 10, "cuisine/top1": 0.5},
                  selection("dm", 0.002))
        write_run(runs, f"single-dish-s{seed}", ["dish"], {"dish/top1": 0.6}, selection("dish/top1", 0.005))
    assert main(["table", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "- uniform: chosen by Δm% on val over 4 random trials (1 seed each): optim.lr=0.002.\n" in out
    assert "- single-task (dish): chosen by dish/top1 on val over 4 random trials (1 seed each): optim.lr=0.005." in out
    assert main(["table", str(runs), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].endswith(",chosen") and all("optim.lr=0.00" in row for row in rows[1:])
    assert main(["table", str(runs), "--format", "latex"]) == 0
    assert "% uniform: chosen by Δm% on val over 4 random trials" in capsys.readouterr().out
    write_run(runs, "rlw-s0", ["dish", "cuisine"], {"dish/top1": 0.4, "cuisine/top1": 0.5})
    assert main(["table", str(runs)]) == 2
    assert "tuned and untuned runs" in capsys.readouterr().err
    assert main(["table", str(runs), "--where", "selection.trials=null"]) == 0  # the untuned one alone
    write_run(runs, "rlw-s1", ["dish", "cuisine"], {"dish/top1": 0.4, "cuisine/top1": 0.5}, selection("dm", 0.1, 8))
    assert main(["table", str(runs), "--where", "selection.trials=8"]) == 0
    (runs / "rlw-s0").rename(tmp_path / "rlw-s0")
    assert main(["table", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "tuned with different budgets: selection.trials (8: rlw-s1; 4: single-dish-s0" in err


class TrainedHere:
    """A sweep child that trained in this process: the tuning logic is what this file checks
    (test_sweep.py checks the runs as separate processes), and each child's start-up (~5 CPU s of
    imports) would be most of the test's time."""

    def __init__(self, argv: list[str]):
        self.returncode = main(argv)

    def poll(self) -> int:
        return self.returncode


@pytest.mark.slow
def test_a_tiny_tuned_sweep_tunes_then_tests_and_its_table_says_how(synthfood_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(WarmPool, "start", lambda pool, argv: TrainedHere(argv))
    spec = yaml.safe_load(TINY_TUNED.read_text())
    spec["base"] = str(TINY)
    spec["overrides"] = [f"data.root={synthfood_root}", f"output_dir={tmp_path}/runs", "tasks=[dish,cuisine]",
                         "train.epochs=1", "train.max_steps=1", "data.limit=32", "tracking.wandb=disabled"]
    path = tmp_path / "tiny_tuned.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "--jobs", "2"]) == 0
    record = json.loads((tmp_path / "runs" / "tiny-tuned" / "tuning.json").read_text())
    assert set(record["methods"]) == {"uncertainty", "single-dish"}
    trials = sorted(p.name for p in (tmp_path / "runs" / "tiny-tuned-tune").iterdir())
    assert trials == [f"{c}-t{k}-s7" for c in ("single-dish", "uncertainty") for k in (0, 1)]
    chosen = record["methods"]["uncertainty"]["overrides"]["weighting.lr"]
    test_run = tmp_path / "runs" / "tiny-tuned" / "uncertainty-s0"
    groups = torch.load(test_run / "checkpoints" / "last.pt", weights_only=False)["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups if g.get("name") == "weighting"] == [chosen]
    assert main(["table", str(tmp_path / "runs" / "tiny-tuned"), "--split", "eval"]) == 0
    assert "- uncertainty: chosen by Δm% on val over 2 random trials (1 seed each): " in capsys.readouterr().out
