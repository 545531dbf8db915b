"""Food-101 reader on a format-exact miniature."""
import os
import re
from pathlib import Path

import pytest

from foodmtl.errors import DataError
from foodmtl.data.sets.food101 import read_food101
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
    with pytest.raises(DataError) as error:
        read_food101(root)
    assert (error.value.path, error.value.line) == (str(train), 10)
    assert str(error.value) == (f"{train}, line 10: 'sushi/123': class 'sushi' is not in "
                                f"{root / 'meta' / 'classes.txt'}")


def test_line_without_class_prefix_is_reported(root):
    test = root / "meta" / "test.txt"
    test.write_text("apple_pie/100003\n100004\n")
    with pytest.raises(DataError, match=re.escape(f"{test}, line 2: expected '<class>/<id>', got '100004'")):
        read_food101(root)


@pytest.mark.parametrize("split", ["train", "test"])
def test_image_listed_twice_names_both_lines(root, split):
    listing = root / "meta" / f"{split}.txt"
    first = listing.read_text().splitlines()[1]
    listing.write_text(listing.read_text() + "\n" + first + "\n")  # a blank line before it: line numbers stay true
    lines = len(listing.read_text().splitlines())
    with pytest.raises(DataError) as error:
        read_food101(root)
    assert str(error.value) == f"{listing}, line {lines}: image '{first}' is listed twice (also line 2)"


def test_image_in_both_splits_is_refused(root):
    train, test = root / "meta" / "train.txt", root / "meta" / "test.txt"
    leaked = train.read_text().splitlines()[4]
    test.write_text(test.read_text() + leaked + "\n")
    with pytest.raises(DataError) as error:
        read_food101(root)
    line = len(test.read_text().splitlines())
    assert str(error.value) == f"{test}, line {line}: '{leaked}' is also listed in {train}, line 5"


def test_duplicate_class_names_the_second_line(root):
    classes = root / "meta" / "classes.txt"
    classes.write_text(classes.read_text() + "baklava\n")
    with pytest.raises(DataError, match=re.escape(f"{classes}, line 4: class 'baklava' is listed twice "
                                                  "(also line 2)")):
        read_food101(root)


def test_malformed_json_list_names_line_and_column(root):
    (root / "meta" / "train.txt").unlink()
    train_json = root / "meta" / "train.json"
    train_json.write_text('{"apple_pie": ["apple_pie/100000",\n  "apple_pie/100001",,]}')
    with pytest.raises(DataError) as error:
        read_food101(root)
    assert (error.value.path, error.value.line) == (str(train_json), 2)
    assert error.value.what.startswith("not valid JSON: Expecting value (column 22)")


def test_json_list_of_the_wrong_shape_says_what_is_expected(root):
    (root / "meta" / "test.txt").unlink()
    (root / "meta" / "test.json").write_text('["apple_pie/100003"]')
    with pytest.raises(DataError, match=re.escape('expected {"<class>": ["<class>/<id>", ...], ...}')):
        read_food101(root)


def test_unknown_class_in_a_json_list_names_the_file(root):
    (root / "meta" / "test.txt").unlink()
    test_json = root / "meta" / "test.json"
    test_json.write_text('{"sushi": ["sushi/1"]}')
    with pytest.raises(DataError) as error:
        read_food101(root)
    assert (error.value.path, error.value.line) == (str(test_json), None)
    assert str(error.value).startswith(f"{test_json}: 'sushi/1': class 'sushi' is not in")


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
