"""FoodX-251 (iFood 2019, Kaur et al. 2019) as a SampleTable, read from its published layout.

``root/class_list.txt`` (lines ``<id> <name>``, ids 0..250), labels ``root/{train,val}_labels.csv``
(Kaggle release: header ``img_name,label``) or ``root/{train,val}_info.csv`` (GitHub ``annot.tar``:
same two columns, no header), images in ``root/{train,val,test}_set/``. The test set is
unlabelled: every ``*.jpg`` in ``test_set/`` becomes a row without a dish; a missing
``test_set/`` just means no test rows. No image is opened here. A label line that is not
``<image>,<class id>``, or an image listed twice, is a DataError naming the file and line.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.formats.split_lists import require_listed_once
from foodmtl.data.paths import numbered_lines, read_numbered_names, require_path
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions
from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

SOURCE = "foodx251"
LABELLED = ("train", "val")
TEST_SPLIT = "val"  # test labels are withheld: the release's val is the test, validation is carved from train
HOW_TO_GET = (
    "get FoodX-251 (iFood 2019) from https://github.com/karansikka1/iFood_2019 - annot.tar "
    "(class_list.txt, train_info.csv, val_info.csv) and the train/val/test image tars - or from the "
    "Kaggle competition ifood-2019-fgvc6 (class_list.txt, train_labels.csv, val_labels.csv, "
    "train_set, val_set, test_set), and extract everything into one folder so that it holds "
    "class_list.txt, the label csv files and train_set/, val_set/, test_set/; then check it with "
    "`python data_prep/verify.py --dataset foodx251 --root DIR`"
)


def read_foodx251(root: str | Path) -> SampleTable:
    """Train/val rows from the label files, test rows from ``test_set/``; vocab in id order."""
    root = Path(root).expanduser().resolve()
    require(root)
    classes = read_class_list(root / "class_list.txt")
    parts = [labelled_frame(root, split, classes) for split in LABELLED]
    parts.append(unlabelled_frame(root / "test_set"))
    frame = pd.concat(parts, ignore_index=True)
    frame["source"] = SOURCE
    return SampleTable(empty_columns(frame), {"dish": classes})


def require(path: Path, alternative: Path | None = None) -> None:
    require_path(path, "FoodX-251", HOW_TO_GET, alternative)


def read_class_list(path: Path) -> list[str]:
    """Class names by id; ids must run 0, 1, 2, ... in file order."""
    require(path)
    return read_numbered_names(path)


def label_file(root: Path, split: str) -> Path:
    kaggle, github = root / f"{split}_labels.csv", root / f"{split}_info.csv"
    require(kaggle, alternative=github)
    return kaggle if kaggle.exists() else github


def labelled_frame(root: Path, split: str, classes: list[str]) -> pd.DataFrame:
    """Rows of a labelled split; a line that is not ``<image>,<class id>`` or an image listed
    twice fails naming file and line."""
    path = label_file(root, split)
    images = root / f"{split}_set"
    require(images)
    lines = numbered_lines(path)
    if len(lines) and lines.iloc[0].rsplit(",", 1)[-1].strip() == "label":
        lines = lines.iloc[1:]  # the Kaggle files start with a header (img_name,label), annot.tar's do not
    fields = lines.str.split(",", n=1)
    names, raw = fields.str[0].str.strip(), fields.str[1].str.strip()
    label = pd.to_numeric(raw, errors="coerce")
    bad = (names == "") | label.isna() | (label % 1 != 0) | (label < 0) | (label >= len(classes))
    if bad.any():
        line = bad.idxmax()
        raise DataError(path, f"'{lines[line]}' is not '<image>,<class id>' with a class id 0..{len(classes) - 1} "
                              f"of {root / 'class_list.txt'}", line=line)
    require_listed_once(path, names, what="image")
    dish = pd.Series(classes).take(label.astype(int).to_numpy())
    return pd.DataFrame({"image": (str(images) + "/" + names).to_numpy(), "split": split,
                         "dish": dish.to_numpy()})


def unlabelled_frame(images: Path) -> pd.DataFrame:
    """Test rows: every .jpg of ``test_set/``, no dish."""
    names: list[str] = []
    if images.is_dir():
        names = sorted(e.name for e in os.scandir(images) if e.is_file() and e.name.endswith(".jpg"))
    return pd.DataFrame({"image": [str(images / n) for n in names], "split": "test", "dish": None})


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish, with category and cuisine from ``options.taxonomy`` (default: the builtin foodx251 one)."""
    return attach_taxonomy(read_foodx251(root), load_taxonomy(options.taxonomy or "foodx251"))
