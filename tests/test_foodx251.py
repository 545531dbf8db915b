"""FoodX-251 reader on format-exact miniatures of both releases (Kaggle and GitHub annot.tar)."""
import re
from pathlib import Path

import pandas as pd
import pytest

from foodmtl.data.foodx251 import read_foodx251
from foodmtl.data.table import COLUMNS
from miniatures import FOODX251_CLASSES, make_foodx251


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_foodx251(tmp_path / "foodx", train_per_class=3, val_per_class=2, test_images=3)


def test_rows_splits_and_labels(root):
    table = read_foodx251(root)
    frame = table.frame
    assert list(frame.columns) == list(COLUMNS)
    assert frame["split"].value_counts().to_dict() == {"train": 9, "val": 6, "test": 3}
    assert set(frame["source"]) == {"foodx251"}
    labels = pd.read_csv(root / "train_labels.csv")
    train = frame[frame["split"] == "train"]
    assert train["image"].tolist() == [str(root / "train_set" / n) for n in labels["img_name"]]
    assert train["dish"].tolist() == [FOODX251_CLASSES[i] for i in labels["label"]]
    test = frame[frame["split"] == "test"]
    assert test["image"].tolist() == [str(root / "test_set" / f"test_{k:05d}.jpg") for k in range(3)]
    assert test["dish"].isna().all()
    assert frame[["category", "cuisine", "ingredients", "mask"]].isna().all().all()


def test_vocab_is_in_class_id_order(tmp_path):
    classes = ("cruller", "macaron", "beignet")
    root = make_foodx251(tmp_path / "foodx", classes=classes, test_images=0)
    assert read_foodx251(root).vocab == {"dish": list(classes)}


def test_github_release_reads_like_kaggle(tmp_path):
    kaggle = read_foodx251(make_foodx251(tmp_path / "kaggle")).frame
    github = read_foodx251(make_foodx251(tmp_path / "github", release="github")).frame
    assert relative(github, tmp_path / "github").equals(relative(kaggle, tmp_path / "kaggle"))


def relative(frame: pd.DataFrame, base: Path) -> pd.DataFrame:
    return frame.assign(image=[str(Path(p).relative_to(base)) for p in frame["image"]])


def test_missing_test_set_means_no_test_rows(root):
    for image in (root / "test_set").iterdir():
        image.unlink()
    (root / "test_set").rmdir()
    assert set(read_foodx251(root).frame["split"]) == {"train", "val"}


@pytest.mark.parametrize("bad", ["3", "-1", "two", "1.5", ""])
def test_label_outside_class_list_names_file_and_line(root, bad):
    val = root / "val_labels.csv"
    val.write_text(val.read_text() + f"val_99999.jpg,{bad}\n")
    with pytest.raises(ValueError, match=re.escape(f"{val}, line 8: 'val_99999.jpg,{bad}'")):
        read_foodx251(root)


def test_class_list_ids_must_count_up(root):
    class_list = root / "class_list.txt"
    class_list.write_text("0 macaron\n2 beignet\n")
    with pytest.raises(ValueError, match=re.escape(f"{class_list}, line 2")):
        read_foodx251(root)


def test_missing_root_says_how_to_get_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        read_foodx251(missing)
    message = str(error.value)
    assert str(missing) in message
    assert "iFood_2019" in message and "annot.tar" in message and "verify.py --dataset foodx251" in message


@pytest.mark.parametrize("relative", ["class_list.txt", "val_labels.csv", "train_set"])
def test_missing_required_path_is_named(root, relative):
    path = root / relative
    path.rename(root / "elsewhere")
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        read_foodx251(root)
