"""Food-101 reader on a format-exact miniature."""
import os
import re
from pathlib import Path

import pytest

from foodmtl.data.food101 import read_food101
from foodmtl.data.table import COLUMNS
from miniatures import make_food101


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_food101(tmp_path / "food-101", train_per_class=3, test_per_class=2)


def test_rows_follow_the_split_lists(root):
    table = read_food101(root)
    frame = table.frame
    assert list(frame.columns) == list(COLUMNS)
    assert frame["split"].value_counts().to_dict() == {"train": 9, "test": 6}
    first = frame.iloc[0]
    assert first["image"] == str(root / "images" / "apple_pie" / "100000.jpg")
    assert (first["split"], first["source"], first["dish"]) == ("train", "food101", "apple_pie")
    test_keys = (root / "meta" / "test.txt").read_text().split()
    assert frame.loc[frame["split"] == "test", "image"].tolist() == [
        str(root / "images" / f"{k}.jpg") for k in test_keys]
    assert all(Path(p).parent.name == d for p, d in zip(frame["image"], frame["dish"]))
    assert frame[["category", "cuisine", "ingredients", "mask"]].isna().all().all()


def test_vocab_keeps_classes_txt_order(tmp_path):
    root = make_food101(tmp_path / "food-101", classes=("pizza", "apple_pie", "baklava"), test_per_class=1)
    assert read_food101(root).vocab == {"dish": ["pizza", "apple_pie", "baklava"]}


def test_relative_root_gives_absolute_paths(root, monkeypatch):
    monkeypatch.chdir(root.parent)
    frame = read_food101("food-101").frame
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in frame["image"])


def test_json_lists_stand_in_for_missing_txt(root):
    from_txt = read_food101(root).frame
    (root / "meta" / "train.txt").unlink()
    (root / "meta" / "test.txt").unlink()
    from_json = read_food101(root).frame
    assert from_json.equals(from_txt)


def test_images_are_not_opened(root):
    for image in (root / "images").rglob("*.jpg"):
        image.write_bytes(b"")
    assert len(read_food101(root)) == 15


def test_unknown_class_is_reported_with_file_and_line(root):
    train = root / "meta" / "train.txt"
    train.write_text(train.read_text() + "sushi/123\n")
    with pytest.raises(ValueError, match=re.escape(f"{train}, line 10: 'sushi/123'")):
        read_food101(root)


def test_line_without_class_prefix_is_reported(root):
    test = root / "meta" / "test.txt"
    test.write_text("apple_pie/100003\n100004\n")
    with pytest.raises(ValueError, match=re.escape(f"{test}, line 2: '100004'")):
        read_food101(root)


def test_missing_root_says_how_to_get_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        read_food101(missing)
    message = str(error.value)
    assert str(missing) in message
    assert "food-101.tar.gz" in message and "data_prep/verify.py --dataset food101" in message


@pytest.mark.parametrize("relative", ["meta/classes.txt", "images"])
def test_missing_required_path_is_named(root, relative):
    path = root / relative
    if path.is_dir():
        path.rename(root / "elsewhere")
    else:
        path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        read_food101(root)


def test_split_without_txt_or_json_names_both(root):
    (root / "meta" / "test.txt").unlink()
    (root / "meta" / "test.json").unlink()
    with pytest.raises(FileNotFoundError) as error:
        read_food101(root)
    assert str(root / "meta" / "test.txt") in str(error.value)
    assert str(root / "meta" / "test.json") in str(error.value)
