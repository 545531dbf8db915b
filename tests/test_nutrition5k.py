"""Nutrition5k reader on a format-exact miniature of the release (quirks included)."""
import math
from pathlib import Path

import pytest

from foodmtl.errors import DataError
from foodmtl.data.sets.nutrition5k import read_nutrition5k
from miniatures import N5K_ROWS_CAFE1 as ROWS_CAFE1
from miniatures import make_nutrition5k as build


def test_rows_labels_units_and_reported_quirks(tmp_path):
    table = read_nutrition5k(build(tmp_path / "nutrition5k_dataset"))
    frame = table.frame.set_index(table.frame["image"].map(lambda p: Path(p).parent.name))
    assert sorted(frame.index) == ["dish_1000000001", "dish_1000000002", "dish_1000000003", "dish_1000000005"]
    assert frame["split"].to_dict() == {"dish_1000000001": "train", "dish_1000000002": "train",
                                        "dish_1000000003": "test", "dish_1000000005": "test"}
    assert frame.loc["dish_1000000001", "ingredients"] == ("rice", "chicken")
    assert frame.loc["dish_1000000002", "ingredients"] == ()            # labelled: nothing but 'deprecated'
    assert frame.loc["dish_1000000005", "ingredients"] == ("rice",)     # num_ingrs variant read
    assert frame.loc["dish_1000000001", ["calories", "mass", "fat", "carb", "protein"]].tolist() == \
        [277.5, 200.0, 2.25, 42.0, 19.55]
    assert math.isnan(frame.loc["dish_1000000002", "mass"])             # all-zero totals: unlabelled
    assert frame.loc["dish_1000000003", "mass"] == 90.0                 # the scale's total is kept
    assert table.vocab["ingredients"] == ["rice", "chicken"]
    assert table.vocab["mass"] == ["g"] and table.vocab["calories"] == ["kcal"]
    notes = " | ".join(table.notes)
    for expected in ("1 dish(es) have all-zero totals", "1 dish(es) have a total mass more than 1 g",
                     "1 dish(es) are in no rgb split list", "1 listed dish(es) have no overhead image"):
        assert expected in notes, notes


def test_depth_split_lists(tmp_path):
    table = read_nutrition5k(build(tmp_path / "n5k"), variant="depth")
    assert sorted(table.frame["split"]) == ["test", "train"]


@pytest.mark.parametrize("row, line, what", [
    ("dish_1000000009,1,2,3,4,5,ingr_0000000001,rice,1,2,3", 5, "7 fields per ingredient"),
    ("dish_1000000009,1,two,3,4,5", 5, "'two' is not a number"),
    ("dish_1000000001,1,2,3,4,5", 5, "dish dish_1000000001 is listed twice"),
    ("plate_7,1,2,3,4,5", 5, "is not a dish id"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, line, what):
    root = build(tmp_path / "n5k", cafe1=ROWS_CAFE1 + [row])
    with pytest.raises(DataError, match=what) as caught:
        read_nutrition5k(root)
    assert str(caught.value).startswith(f"{root / 'metadata' / 'dish_metadata_cafe1.csv'}, line {line}: ")


def test_a_dish_in_both_split_lists_is_an_error(tmp_path):
    root = build(tmp_path / "n5k", train="1000000001\n1000000003\n")
    with pytest.raises(DataError, match="dish_1000000003 is in more than one split list"):
        read_nutrition5k(root)


def test_missing_release_names_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)Nutrition5k not found.*google-research-datasets/Nutrition5k"):
        read_nutrition5k(tmp_path / "nowhere")


def test_the_shipped_experiment_builds_its_tasks_on_the_miniature(tmp_path):
    from foodmtl.config import load_config
    from foodmtl.data.builder import build_data
    from foodmtl.engine.preflight import require_metric
    from foodmtl.tasks import task_options

    root = build(tmp_path / "nutrition5k_dataset")
    experiment = Path(__file__).resolve().parents[1] / "experiments" / "nutrition5k" / "base.yaml"
    cfg = load_config(experiment, [f"data.root={root}"])
    data = build_data(cfg.data, cfg.tasks, 0, task_options(cfg))  # no release val: one training dish carved off
    assert (len(data.train), len(data.eval), len(data.test)) == (1, 1, 2)
    cfg = load_config(experiment, [f"data.root={root}", "data.eval_split=test", "data.test_split=null"])
    data = build_data(cfg.data, cfg.tasks, 0, task_options(cfg))
    assert [(t.name, t.kind, t.classes) for t in data.tasks] == [
        ("ingredients", "multilabel", ("rice", "chicken")), ("mass", "regression", ("g",)),
        ("calories", "regression", ("kcal",)), ("fat", "regression", ("g",)), ("carb", "regression", ("g",)),
        ("protein", "regression", ("g",))]
    assert (len(data.train), len(data.eval)) == (2, 2)  # train: dishes 1 and 2; test: dishes 3 and 5
    # the only labelled training dish is dish 1 (dish 2's totals are all zero): its values, std 1
    assert [t.stats for t in data.tasks[1:3]] == [{"mean": 200.0, "std": 1.0}, {"mean": 277.5, "std": 1.0}]
    require_metric(cfg.train.best_metric, data.tasks)  # calories/mae: a metric of these tasks
