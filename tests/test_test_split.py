"""Model selection on validation, the test split scored once with best.pt (#26.1): the run's summary,
metrics.jsonl and printed report, the lists of evaluated images, and SynthFood's own val.txt."""
import json

import pytest
import torch

from foodmtl.cli import main
from foodmtl.config import DataConfig, SourceConfig, load_config
from foodmtl.data.builder import read_source
from foodmtl.data.sets import LoadOptions, load
from foodmtl.analysis.runs import local_runs
from foodmtl.analysis.tables import figures_note
from foodmtl.engine.snapshot import scored
from foodmtl.engine.trainer import train
from foodmtl.errors import ConfigError, DataError
from foodmtl.synthfood.generate import generate_synthfood, validation_per_dish
from foodmtl.tracking.local import read_jsonl

TINY = "experiments/synthfood/tiny.yaml"


@pytest.fixture(scope="module")
def selected_run(synthfood_root, tmp_path_factory):
    """Two epochs, each scored on val; best.pt is the better of the two."""
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={out}", "run=r", "train.epochs=2",
                             "tasks=[dish,ingredients]"])
    run_dir, final = train(cfg)
    return run_dir, final, json.loads((run_dir / "summary.json").read_text())


def test_the_test_split_is_best_pt_scored_once_and_reported_apart_from_validation(selected_run, capsys):
    run_dir, final, summary = selected_run
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert summary["tested"] == {"checkpoint": "best.pt", "step": best["step"], "epoch": best["epoch"], "split": "test"}
    assert summary["final"] == pytest.approx(final) and set(summary["test"]) == set(final)
    assert best["metrics"]["dish/top1"] == summary["best"]       # best.pt was chosen on val
    tests = [r for r in read_jsonl(run_dir / "metrics.jsonl") if any(k.startswith("test/") for k in r)]
    assert len(tests) == 1 and tests[0]["step"] == summary["steps"]
    assert {k[len("test/"):]: v for k, v in tests[0].items() if k.startswith("test/")} == summary["test"]
    # ... and the figures are best.pt's on the test split, as `foodmtl eval` scores them
    assert main(["eval", str(run_dir / "checkpoints" / "best.pt"), "data.eval_split=test",
                 "--json", str(run_dir / "again.json")]) == 0
    again = json.loads((run_dir / "again.json").read_text())
    assert again == pytest.approx(summary["test"], abs=1e-6)


def test_the_evaluated_images_are_listed_and_validation_never_meets_test_or_train(selected_run, synthfood_root):
    run_dir, _, _ = selected_run
    val = (run_dir / "val_images.txt").read_text().split()
    test = (run_dir / "test_images.txt").read_text().split()
    listed = (synthfood_root / "val.txt").read_text().split()
    assert len(val) == len(listed) > 0 and not set(val) & set(test)
    assert sorted(p.split("/")[-2] + "/" + p.split("/")[-1][:-4] for p in val) == sorted(listed)
    parts = read_source(SourceConfig("synthfood", str(synthfood_root)), DataConfig(root=str(synthfood_root)), 0)
    assert not set(parts.train["image"]) & (set(val) | set(test))


def test_best_metric_last_keeps_the_final_model_whatever_the_scores(synthfood_root, tmp_path):
    assert scored({"dish/top1": 0.1}, "last", 0.9) == (None, True)      # worse than before, still kept
    assert scored({"dish/top1": 0.1}, "dish/top1", 0.9) == (0.1, False)
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=r", "train.epochs=2",
                             "tasks=[dish]", "train.best_metric=last"])
    run_dir, _ = train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert summary["best"] is None and summary["tested"]["step"] == best["step"] == summary["steps"]
    assert best["metrics"] == pytest.approx(summary["final"])
    assert all(torch.equal(best["objective"][k], last["objective"][k]) for k in best["objective"])
    assert figures_note(local_runs(tmp_path), "test") == ("Figures: each run's best.pt (the final model) scored "
                                                          "once on the test split.")


@pytest.mark.parametrize("overrides", [["data.test_split=null"], ["data.eval_split=test"]])
def test_without_a_separate_test_split_the_summary_has_no_test_figures(overrides, synthfood_root, tmp_path):
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=r", "train.max_steps=1",
                             "tasks=[dish]", "train.best_metric=dish/top1", *overrides])
    run_dir, _ = train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "test" not in summary and "tested" not in summary
    assert not (run_dir / "test_images.txt").exists() or "data.eval_split=test" in overrides


def test_the_train_report_prints_both_splits(synthfood_root, tmp_path, capsys):
    assert main(["train", TINY, f"data.root={synthfood_root}", f"output_dir={tmp_path}", "train.max_steps=1",
                 "tasks=[dish]"]) == 0
    out = capsys.readouterr().out
    assert "eval split (val), last evaluation:" in out and "test split (test), best.pt of step 1:" in out
    assert "units: accuracies, F1, mAP, IoU, Dice as fractions of 1; loss: each task's training loss\n" in out
    assert main(["train", TINY, f"data.root={synthfood_root}", f"output_dir={tmp_path}", "train.max_steps=1",
                 "tasks=[dish,mass]", "run=mass"]) == 0
    assert "; mae in its task's unit (mass g), mae_pct in %\n" in capsys.readouterr().out


def test_a_test_split_that_is_the_training_split_is_one_config_error():
    with pytest.raises(ConfigError, match="test_split='train' is the training split"):
        load_config(None, ["data.test_split=train"])


def test_synthfood_lists_its_validation_images_among_the_training_ones(tmp_path):
    root = generate_synthfood(tmp_path / "s", dishes=3, per_dish=12, size=32, val_fraction=0.3)
    frame = load("synthfood", str(root), LoadOptions()).frame
    counts = frame.groupby(["dish", "split"]).size().unstack()   # of 12: 2 test (0.2), 3 of the other 10 val
    assert counts.to_dict("list") == {"test": [2, 2, 2], "train": [7, 7, 7], "val": [3, 3, 3]}
    none = generate_synthfood(tmp_path / "n", dishes=3, per_dish=12, size=32, val_fraction=0)
    assert (none / "val.txt").read_text() == "" and "val" not in set(load("synthfood", str(none), LoadOptions())
                                                                    .frame["split"])


@pytest.mark.parametrize("line, message", [("nope/1", "'nope/1' is no training image"),
                                           (None, "listed twice")])
def test_a_val_list_naming_no_training_image_is_a_data_error_at_its_line(tmp_path, line, message):
    root = generate_synthfood(tmp_path / "s", dishes=3, per_dish=6, size=32)
    listing = root / "val.txt"
    first = listing.read_text().splitlines()[0]
    listing.write_text(f"{first}\n{line or first}\n")
    with pytest.raises(DataError, match=message) as caught:
        load("synthfood", str(root), LoadOptions())
    assert "line 2" in str(caught.value)


def test_validation_per_dish_leaves_one_to_train_on():
    assert [validation_per_dish(n, 0.1) for n in (1, 2, 10, 26)] == [0, 1, 1, 3]
    assert validation_per_dish(4, 0.9) == 3
    with pytest.raises(ValueError):
        validation_per_dish(10, 1.0)


def test_a_table_reports_test_figures_where_every_run_has_them_and_never_mixes_splits():
    from foodmtl.analysis.runs import make_run
    from foodmtl.analysis.tables import figures_note, reported_split, runs_frame

    def run(name: str, test: dict | None):
        config = {"run": name, "train": {"seed": 0, "best_metric": "dish/top1"}, "weighting": {"name": name},
                  "tasks": ["dish", "cuisine"], "data": {"eval_split": "val", "test_split": "test"}}
        return make_run(config, {"dish/top1": 0.5}, [], name, test=test)

    tested = [run("uniform", {"dish/top1": 0.25}), run("famo", {"dish/top1": 0.75})]
    assert reported_split(tested) == "test" and runs_frame(tested, "test")["dish/top1"].tolist() == [0.25, 0.75]
    assert runs_frame(tested, reported_split(tested, "eval"))["dish/top1"].tolist() == [0.5, 0.5]
    assert figures_note(tested, "test") == ("Figures: each run's best.pt (chosen on the val split by dish/top1) "
                                            "scored once on the test split.")
    mixed = [*tested, run("dwa", None)]
    with pytest.raises(ConfigError, match="2 of 3 runs scored a test split"):
        reported_split(mixed)
    with pytest.raises(ConfigError, match="1 run\\(s\\) have no test figures \\(dwa\\)"):
        reported_split(mixed, "test")
    assert reported_split([run("dwa", None)]) == "eval"
