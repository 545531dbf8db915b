"""Units of regression tasks: named by the data set's reader or by a task's ``unit`` option, recorded
in the run (summary.json, W&B's summary), shown by ``foodmtl table`` (markdown, LaTeX, CSV) and on
plot axes; and the readers' notes printed when training starts."""
import io
import json
from pathlib import Path

import pandas as pd
import pytest

import wandb_records
from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.data.builder import DataBundle, build_tasks
from foodmtl.data.sets.coco import coco_to_masks
from foodmtl.engine.trainer import train
from foodmtl.errors import ConfigError
from miniatures import make_coco

TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"
VOCAB = {"mass": ["g"], "calories": ["kcal"]}  # as Nutrition5k's and SynthFood's readers name them


def test_the_unit_is_the_readers_unless_the_task_option_names_one():
    mass, calories = build_tasks(["mass", "calories"], VOCAB, {"mass": {"unit": "oz"}})
    assert (mass.classes, calories.classes) == (("oz",), ("kcal",))
    assert build_tasks(["mass"], VOCAB)[0].classes == ("g",)


@pytest.mark.parametrize("vocab, options, message", [
    (VOCAB, {"mass": {"unit": ""}}, "task_options.mass.unit=''; expected a unit name"),
    (VOCAB, {"mass": {"unit": 3}}, "task_options.mass.unit=3"),
    (VOCAB, {"mass": {"units": "g"}}, r"unknown option\(s\) \['units'\].*valid: loss, standardize, unit"),
    ({"mass": ["g", "kg"]}, {}, r"sources give task 'mass' in different units \(g, kg\)"),
])
def test_bad_units_are_config_errors(vocab, options, message):
    with pytest.raises(ConfigError, match=message):
        build_tasks(["mass"], vocab, options)


@pytest.fixture(scope="module")
def unit_run(synthfood_root, tmp_path_factory) -> Path:
    """One tiny run: mass relabelled by its option, calories in the reader's kcal, W&B offline."""
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={out}", "run=units-s0", "experiment=units",
                             "tasks=[dish,mass,calories]", "task_options.mass.unit=grams", "train.epochs=1",
                             "train.max_steps=2", "data.limit=32", "tracking.wandb=offline"])
    run_dir, _ = train(cfg)
    return run_dir


def test_the_run_records_each_tasks_unit_in_its_summary_and_in_wandb(unit_run):
    units = {"mass": "grams", "calories": "kcal"}
    assert json.loads((unit_run / "summary.json").read_text())["units"] == units
    updates = [r["summary"]["update"] for r in wandb_records.records(wandb_records.segments(unit_run)[-1])
               if r["type"] == "summary"]
    assert [u["units"] for u in updates if "units" in u] == [units]


def test_table_headers_and_csv_carry_the_recorded_units(unit_run, capsys):
    metrics = ["--metrics", "mass/mae", "calories/mae", "calories/mae_pct", "dish/top1"]
    assert main(["table", str(unit_run.parent), *metrics]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| method"))
    assert header.startswith("| method | mass/mae (grams) ↓ | calories/mae (kcal) ↓ | calories/mae_pct (%) ↓ | "
                             "dish/top1 (%) ↑ |")
    assert main(["table", str(unit_run.parent), *metrics, "--format", "latex"]) == 0
    assert "calories/mae (kcal) $\\downarrow$" in capsys.readouterr().out
    assert main(["table", str(unit_run.parent), *metrics, "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False).set_index("value")
    assert table["unit"].to_dict() == {"mass/mae": "grams", "calories/mae": "kcal", "calories/mae_pct": "%",
                                       "dish/top1": "%", "mean rank": ""}


def test_a_table_of_runs_that_disagree_on_a_unit_is_refused(unit_run, tmp_path, capsys):
    import shutil

    for name, unit in (("a-s0", "grams"), ("a-s1", "oz")):
        shutil.copytree(unit_run, tmp_path / name, ignore=shutil.ignore_patterns("checkpoints", "wandb"))
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        (tmp_path / name / "summary.json").write_text(json.dumps(summary | {"units": {"mass": unit}}))
    assert main(["table", str(tmp_path), "--metrics", "mass/mae"]) == 2
    assert "give mass in different units (grams and oz)" in capsys.readouterr().err


def test_training_prints_every_readers_notes_once(tmp_path, capfd):
    """A COCO split whose json holds a polygon of two points: coco_to_masks skips it, and the run says so."""
    square, two_points = [[2, 2, 8, 2, 8, 8, 2, 8]], [[1, 1, 3, 3]]
    for split in ("train", "test"):
        annotations = [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": square, "iscrowd": 0},
                       {"id": 2, "image_id": 2, "category_id": 7, "segmentation": two_points, "iscrowd": 0}]
        folder = make_coco(tmp_path / "coco" / split, [{"id": 7, "name": "rice"}], annotations, images=4)
        with pytest.warns(UserWarning, match="annotation 2"):
            coco_to_masks(folder / "annotations.json", folder / "images", folder / "masks", split)
    cfg = load_config(TINY, [f"data.root={tmp_path / 'coco'}", "data.dataset=coco", "tasks=[segmentation]",
                             f"output_dir={tmp_path / 'runs'}", "data.batch_size=2", "train.max_steps=1",
                             "train.epochs=1", "tracking.wandb=disabled", "train.overlays=0",
                             "train.best_metric=segmentation/mIoU"])
    train(cfg)
    err = capfd.readouterr().err
    for split in ("train", "test"):
        note = (f"note: coco: {tmp_path / 'coco' / split / 'masks'}: 1 degenerate shape(s) skipped when its masks "
                "were drawn (listed in skipped_shapes.txt)")
        assert err.count(note) == 1, err


def test_only_the_reporting_rank_prints_the_notes(capsys):
    bundle = DataBundle([], None, None, notes=["coco: annotations.json: 1 degenerate shape(s) skipped"])
    bundle.print_notes(False)  # every rank but 0
    assert capsys.readouterr().err == ""
    bundle.print_notes(True)
    assert capsys.readouterr().err == "note: coco: annotations.json: 1 degenerate shape(s) skipped\n"
