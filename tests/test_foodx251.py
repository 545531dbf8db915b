"""FoodX-251 reader on format-exact miniatures of both releases (Kaggle and GitHub annot.tar)."""
import re
from pathlib import Path

import pandas as pd
import pytest

from foodmtl.errors import DataError
from foodmtl.data.sets.foodx251 import read_foodx251
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


@pytest.mark.parametrize("bad", ["3", "-1", "two", "1.5", "", ",1"])
def test_label_outside_class_list_names_file_and_line(root, bad):
    val = root / "val_labels.csv"
    line = f"val_99999.jpg,{bad}" if not bad.startswith(",") else bad
    val.write_text(val.read_text() + line + "\n")
    with pytest.raises(DataError) as error:
        read_foodx251(root)
    assert str(error.value) == (f"{val}, line 8: '{line}' is not '<image>,<class id>' with a class id 0..2 of "
                                f"{root / 'class_list.txt'}")


def test_image_listed_twice_names_both_lines(tmp_path):
    root = make_foodx251(tmp_path / "foodx", release="github")
    train = root / "train_info.csv"
    train.write_text(train.read_text() + "train_00001.jpg,2\n")
    with pytest.raises(DataError, match=re.escape(f"{train}, line 10: image 'train_00001.jpg' is listed twice "
                                                  "(also line 2)")):
        read_foodx251(root)


def test_bytes_that_are_not_utf8_name_their_line(root):
    train = root / "train_labels.csv"
    train.write_bytes(b"\xef\xbb\xbf" + train.read_bytes() + b"caf\xe9.jpg,1\n")  # after a byte-order mark
    with pytest.raises(DataError) as error:
        read_foodx251(root)
    assert (error.value.path, error.value.line) == (str(train), 11)
    assert error.value.what.startswith("not UTF-8 text (invalid continuation byte")


def test_byte_order_marks_are_ignored(root):
    before = read_foodx251(root)
    for name in ("class_list.txt", "train_labels.csv"):
        (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())
    after = read_foodx251(root)
    assert after.frame.equals(before.frame) and after.vocab == before.vocab


def test_class_list_ids_must_count_up(root):
    class_list = root / "class_list.txt"
    class_list.write_text("0 macaron\n2 beignet\n")
    with pytest.raises(DataError) as error:
        read_foodx251(root)
    assert str(error.value) == f"{class_list}, line 2: expected '1 <name>', got '2 beignet'"


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
