"""Paper tables and curves from real (tiny) run folders: mean ± std over seeds, Δm%, PNG figures."""
import json
import shutil
import statistics
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
import yaml

from foodmtl.cli import main
from foodmtl.config import ConfigError, load_config
from foodmtl.engine.trainer import train
from foodmtl.runs import load_group, method_name
from foodmtl.tables import render, runs_frame, summarize
from foodmtl.viz.curves import seed_mean

TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"
RUNS = {"uniform-s0": [], "uniform-s1": [], "uncertainty-s0": ["weighting.name=uncertainty"],
        "single-dish-s0": ["tasks=[dish]"], "single-ingredients-s0": ["tasks=[ingredients]",
                                                                      "train.best_metric=ingredients/mAP"]}
# known final metrics written over the real ones: (dish/top1, ingredients/f1_micro, ingredients/mAP)
KNOWN = {"uniform-s0": (0.5, 0.2, 0.4), "uniform-s1": (0.7, 0.4, 0.4), "uncertainty-s0": (0.55, 0.5, 0.25),
         "single-dish-s0": (0.5, None, None), "single-ingredients-s0": (None, 0.4, 0.5)}


@pytest.fixture(scope="module")
def runs_dir(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for name, extra in RUNS.items():
        cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={out}", f"run={name}",
                                 "experiment=abl", "tasks=[dish,ingredients]", f"train.seed={name[-1]}",
                                 "train.epochs=2", "train.max_steps=4", "data.limit=32", "tracking.wandb=disabled",
                                 *extra])
        train(cfg)
    return out / "abl"


@pytest.fixture
def known_dir(runs_dir, tmp_path):
    """The real run folders with their final metrics replaced by KNOWN."""
    folder = tmp_path / "abl"
    shutil.copytree(runs_dir, folder, ignore=shutil.ignore_patterns("checkpoints"))
    for name, values in KNOWN.items():
        summary = json.loads((folder / name / "summary.json").read_text())
        keys = ("dish/top1", "ingredients/f1_micro", "ingredients/mAP")
        summary["final"] = {k: v for k, v in zip(keys, values) if v is not None}
        (folder / name / "summary.json").write_text(json.dumps(summary))
    return folder


def test_real_runs_summarize_to_their_mean_std_and_delta_m(runs_dir):
    table = summarize(runs_frame(load_group(str(runs_dir))))
    final = {n: json.loads((runs_dir / n / "summary.json").read_text())["final"] for n in RUNS}
    assert list(table.index) == ["uncertainty", "uniform", "single-task (dish)", "single-task (ingredients)"]
    assert list(table["seeds"]) == [1, 2, 1, 1]
    for metric in ("dish/top1", "ingredients/mAP"):
        pair = [final["uniform-s0"][metric], final["uniform-s1"][metric]]
        assert table.loc["uniform", metric] == pytest.approx(statistics.mean(pair))
        assert table.loc["uniform", f"{metric} std"] == pytest.approx(statistics.stdev(pair))
    base = {m: final["single-dish-s0" if m.startswith("dish") else "single-ingredients-s0"][m]
            for m in ("dish/top1", "ingredients/f1_micro", "ingredients/mAP")}
    expected = 100 / 3 * sum((final["uncertainty-s0"][m] - b) / b for m, b in base.items())
    assert table.loc["uncertainty", "Δm%"] == pytest.approx(expected)


def test_known_values_by_hand(known_dir):
    table = summarize(runs_frame(load_group(str(known_dir))))
    assert table.loc["uniform", "dish/top1"] == pytest.approx(0.6)
    assert table.loc["uniform", "dish/top1 std"] == pytest.approx(0.02 ** 0.5)
    # Δm = 100/3 * ((0.6-0.5)/0.5 + (0.3-0.4)/0.4 + (0.4-0.5)/0.5) = 100/3 * (0.2 - 0.25 - 0.2)
    assert table.loc["uniform", "Δm%"] == pytest.approx(-25 / 3)
    assert table.loc["uncertainty", "Δm%"] == pytest.approx(100 / 3 * (0.1 + 0.25 - 0.5))
    assert pd.isna(table.loc["single-task (dish)", "Δm%"])
    assert pd.isna(table.loc["uncertainty", "dish/top1 std"])  # one seed: no std


def test_markdown_marks_the_best_multi_task_value(known_dir, capsys):
    assert main(["table", str(known_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| method | dish/top1 | ingredients/f1_micro | ingredients/mAP | Δm% | seeds |"
    assert lines[3] == "| uniform | **60.00 ± 14.14** | 30.00 ± 14.14 | **40.00 ± 0.00** | -8.33 | 2 |"
    assert lines[2] == "| uncertainty | 55.00 | **50.00** | 25.00 | **-5.00** | 1 |"
    assert lines[4] == "| single-task (dish) | 50.00 | – | – | – | 1 |"


def test_csv_and_latex(known_dir, tmp_path, capsys):
    assert main(["table", str(known_dir), "--format", "csv", "--out", str(tmp_path / "t.csv")]) == 0
    frame = pd.read_csv(tmp_path / "t.csv", index_col=0)
    assert frame.loc["uncertainty", "ingredients/f1_micro"] == pytest.approx(0.5)
    assert frame.loc["uniform", "Δm%"] == pytest.approx(-25 / 3, abs=1e-4)
    capsys.readouterr()
    assert main(["table", str(known_dir), "--format", "latex", "--metrics", "ingredients/f1_micro"]) == 0
    tex = capsys.readouterr().out
    assert "method & ingredients/f1\\_micro & $\\Delta_m$ (\\%) & seeds \\\\" in tex
    assert "uncertainty & \\textbf{50.00} & \\textbf{+25.00} & 1 \\\\" in tex
    assert "single-task (dish)" not in tex and "single-task (ingredients) & 40.00 & – & 1" in tex
    assert tex.startswith("\\begin{tabular}{lccc}") and tex.rstrip().endswith("\\end{tabular}")


def test_runs_of_two_groups_need_a_group(known_dir):
    config_path = known_dir / "uncertainty-s0" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["tracking"]["group"] = "other"
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="abl, other"):
        load_group(str(known_dir))
    assert [r.name for r in load_group(str(known_dir), "other")] == ["uncertainty-s0"]
    assert main(["table", str(known_dir)]) == 2


@pytest.mark.parametrize("config, method", [
    ({"run": "famo-s2", "tasks": ["a", "b"], "train": {"seed": 2}, "weighting": {"name": "famo"}}, "famo"),
    ({"run": "manual-x2-s0", "tasks": ["a", "b"], "train": {"seed": 0}, "weighting": {"name": "manual"}},
     "manual-x2"),
    ({"run": "uniform-s0-20260101-120000", "tasks": ["a", "b"], "train": {"seed": 0},
      "weighting": {"name": "uniform"}}, "uniform"),
    ({"run": "single-dish-s1", "tasks": ["dish"], "train": {"seed": 1}, "weighting": {"name": "uniform"}},
     "single-task (dish)"),
])
def test_method_names(config, method):
    assert method_name(config) == method


def test_seed_mean_is_the_mean_and_std_at_each_step():
    a = pd.DataFrame({"step": [1, 2], "weight/dish": [1.0, 2.0]})
    b = pd.DataFrame({"step": [1, 2], "weight/dish": [3.0, 2.0]})
    mean, std = seed_mean([a, b], "step")
    assert mean["weight/dish"].tolist() == [2.0, 2.0]
    assert std["weight/dish"].tolist() == pytest.approx([2 ** 0.5, 0.0])


def test_plot_writes_png_figures_and_logs_them_to_wandb(runs_dir, tmp_path):
    assert main(["plot", str(runs_dir), "--out", str(tmp_path), "--wandb", "offline"]) == 0
    for name in ("abl-weights.png", "abl-validation.png"):
        path = tmp_path / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(path).shape
        assert width > 400 and height > 300
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("files/media/images/plots/*.png"))


class FakeWandbRun:
    def __init__(self, folder: Path):
        self.config = yaml.safe_load((folder / "config.yaml").read_text())
        self.url = f"https://wandb.ai/ent/proj/runs/{folder.name}"
        self.rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]

    def scan_history(self):  # W&B rows carry every key, None where a step did not log it
        keys = {k for row in self.rows for k in row}
        return [{k: row.get(k) for k in keys} for row in self.rows]


def test_wandb_runs_read_final_metrics_from_the_history(runs_dir, monkeypatch):
    import wandb

    calls = []

    class FakeApi:
        def __init__(self, timeout):
            pass

        def runs(self, path, filters):
            calls.append((path, filters))
            return [FakeWandbRun(folder) for folder in sorted(runs_dir.iterdir())]

    monkeypatch.setattr(wandb, "Api", FakeApi)
    runs = load_group("wandb:ent/proj", "abl")
    assert calls == [("ent/proj", {"state": "finished", "group": "abl"})]
    local = {r.name: r for r in load_group(str(runs_dir))}
    for run in runs:
        assert run.final == pytest.approx(local[run.name].final)
        assert run.history == local[run.name].history
