"""The validation split: the release's where it has one, else carved out of train, stratified and
independent of row order (foodmtl/data/validation.py)."""
import pandas as pd
import pytest
from miniatures import make_foodx251

from foodmtl.config import DataConfig, SourceConfig, load_config
from foodmtl.data.builder import read_source
from foodmtl.data.sets.foodx251 import read_foodx251
from foodmtl.data.validation import carve_validation, with_test_split, with_validation
from foodmtl.errors import ConfigError
from foodmtl.synthfood.generate import generate_synthfood


def frame(counts: dict[str, int], split: str = "train") -> pd.DataFrame:
    rows = [(f"img/{dish}/{i:03d}.jpg", split, dish) for dish, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["image", "split", "dish"])


def test_carving_is_stratified_by_dish_and_keeps_every_class_in_train():
    out = carve_validation(frame({"a": 20, "b": 10, "c": 2, "d": 1}), 0.1, seed=0, stratify="dish")
    val = out[out["split"] == "val"].groupby("dish").size().to_dict()
    assert val == {"a": 2, "b": 1, "c": 1}            # round(0.1 n), at least 1 for n >= 2, none for n = 1
    assert set(out[out["split"] == "train"]["dish"]) == {"a", "b", "c", "d"}


def test_carving_depends_on_the_images_and_seed_not_on_row_order():
    data = frame({"a": 30, "b": 17})
    first = carve_validation(data, 0.2, seed=3, stratify="dish")
    shuffled = carve_validation(data.sample(frac=1, random_state=1), 0.2, seed=3, stratify="dish")
    val = set(first[first["split"] == "val"]["image"])
    assert val == set(shuffled[shuffled["split"] == "val"]["image"])
    other = carve_validation(data, 0.2, seed=4, stratify="dish")
    assert val != set(other[other["split"] == "val"]["image"])


def test_a_release_val_is_kept_and_a_withheld_test_is_replaced_by_it():
    data = pd.concat([frame({"a": 10}), frame({"a": 4}, "val"), frame({"a": 3}, "test")], ignore_index=True)
    kept = with_validation(with_test_split(data, "test"), 0.5, 0, "dish")
    assert kept["split"].value_counts().to_dict() == {"train": 10, "val": 4, "test": 3}
    swapped = with_validation(with_test_split(data, "val"), 0.5, 0, "dish")  # FoodX-251: its val is the test
    assert swapped["split"].value_counts().to_dict() == {"train": 5, "val": 5, "test": 4, "test-unlabelled": 3}


def test_a_run_that_selects_on_val_trains_without_the_carved_images(tmp_path):
    root = str(generate_synthfood(tmp_path / "s", dishes=4, per_dish=10, size=32, val_fraction=0))  # no val.txt
    cfg = DataConfig(root=root, eval_split="val", val_fraction=0.25)
    parts = read_source(SourceConfig("synthfood", root), cfg, seed=0)
    assert len(parts.eval) > 0 and not set(parts.eval["image"]) & set(parts.train["image"])
    whole = read_source(SourceConfig("synthfood", root), DataConfig(root=root, eval_split="test", test_split=None), 0)
    assert len(parts.train) + len(parts.eval) == len(whole.train)   # carved from train
    assert parts.test["image"].tolist() == whole.eval["image"].tolist()   # test untouched


def test_val_fraction_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="data.val_fraction=1.5"):
        load_config(None, ["data.val_fraction=1.5"])


def test_foodx251_tests_on_its_release_val_and_selects_on_a_part_of_train(tmp_path):
    """FoodX-251's test labels are withheld: its val is the test, validation is carved from train."""
    root = str(make_foodx251(tmp_path / "x"))
    source = SourceConfig("foodx251", root)
    table = read_foodx251(root).frame
    test = read_source(source, DataConfig(dataset="foodx251", root=root, eval_split="test"), 0)
    assert set(test.eval["image"]) == set(table[table["split"] == "val"]["image"])
    val = read_source(source, DataConfig(dataset="foodx251", root=root, eval_split="val", val_fraction=0.3), 0)
    train = set(table[table["split"] == "train"]["image"])
    assert len(val.eval) > 0 and set(val.eval["image"]) <= train
    assert set(val.train["image"]) == train - set(val.eval["image"])


def test_a_run_writes_the_images_it_evaluates_on_into_its_folder(synthfood_root, tmp_path):
    """The carved validation list is in the run folder, so it can be audited and reproduced."""
    from foodmtl.engine.trainer import train

    cfg = load_config(None, [f"data.root={synthfood_root}", "data.eval_split=val", "data.val_fraction=0.25",
                             "data.image_size=32", "data.num_workers=0", "model.backbone=resnet10t", "tasks=[dish]",
                             "train.max_steps=1", "train.epochs=1", "tracking.wandb=disabled",
                             f"output_dir={tmp_path}", "run=audit"])
    run_dir, _ = train(cfg)
    listed = (run_dir / "val_images.txt").read_text().splitlines()
    expected = read_source(SourceConfig("synthfood", str(synthfood_root)), cfg.data, seed=0)
    assert listed == list(expected.eval["image"]) and len(listed) > 0
