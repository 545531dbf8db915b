"""Food-101 (Bossard et al., ECCV 2014) as a SampleTable, read from its published layout.

``root/images/<class>/<id>.jpg``, ``root/meta/classes.txt`` (one class a line) and the
split lists ``root/meta/{train,test}.txt`` (lines ``<class>/<id>``, no extension); the
``{split}.json`` files (``{class: ["<class>/<id>", ...]}``) stand in when a .txt is missing.
Paths come from the lists alone: no image is opened (``data_prep/verify.py`` does that).
A list entry that is not ``<class>/<id>`` with a class of classes.txt, a class or image listed
twice, or an image in both splits is a DataError naming the file and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.paths import read_json, read_text, require_path
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions
from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

SOURCE = "food101"
SPLITS = ("train", "test")
HOW_TO_GET = (
    "download food-101.tar.gz from the ETH Zurich Food-101 page "
    "(https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/), extract it, then check it with "
    "`python data_prep/verify.py --dataset food101 --root DIR` (DIR: the extracted food-101 folder)"
)


def read_food101(root: str | Path) -> SampleTable:
    """One row per listed image; ``vocab["dish"]`` in classes.txt order."""
    root = Path(root).expanduser().resolve()
    require(root)
    require(root / "images")
    classes_txt = root / "meta" / "classes.txt"
    classes = read_classes(classes_txt)
    lists = {split: read_split_keys(root / "meta", split) for split in SPLITS}
    frame = pd.concat([split_frame(root, split, *lists[split], classes, classes_txt) for split in SPLITS],
                      ignore_index=True)
    require_disjoint(lists)
    frame["source"] = SOURCE
    return SampleTable(empty_columns(frame), {"dish": classes})


def require(path: Path, alternative: Path | None = None) -> None:
    require_path(path, "Food-101", HOW_TO_GET, alternative)


def read_classes(path: Path) -> list[str]:
    require(path)
    classes = numbered_lines(path)
    if classes.empty:
        raise DataError(path, "lists no classes")
    require_unique(path, classes, "class")
    return classes.tolist()


def numbered_lines(path: Path) -> pd.Series:
    """The stripped non-blank lines, indexed by line number (for error messages)."""
    lines = pd.Series(read_text(path).splitlines(), dtype=str).str.strip()
    lines.index += 1
    return lines[lines != ""]


def fail(path: Path, what: str, line: int) -> NoReturn:
    """DataError at ``line`` of a .txt file; a .json list has no line numbers (its index counts keys)."""
    raise DataError(path, what, line=line if path.suffix == ".txt" else None)


def require_unique(path: Path, keys: pd.Series, what: str) -> None:
    again = keys.duplicated()
    if again.any():
        line = again.idxmax()
        also = f" (also line {keys.index[keys == keys[line]][0]})" if path.suffix == ".txt" else ""
        fail(path, f"{what} '{keys[line]}' is listed twice{also}", line)


def require_disjoint(lists: dict[str, tuple[Path, pd.Series]]) -> None:
    """An image in two splits would be trained and tested on: DataError naming both places."""
    (first_path, first), (path, keys) = lists.values()
    shared = keys.isin(set(first))
    if shared.any():
        line = shared.idxmax()
        also = str(first_path)
        if first_path.suffix == ".txt":
            also += f", line {first.index[first == keys[line]][0]}"
        fail(path, f"'{keys[line]}' is also listed in {also}", line)


def split_frame(root: Path, split: str, path: Path, keys: pd.Series, classes: list[str],
                classes_txt: Path) -> pd.DataFrame:
    """Rows of one split: image path, split name and dish, checked against classes.txt."""
    dish = keys.str.split("/", n=1).str[0]
    malformed = ~keys.str.contains("/", regex=False) | keys.str.endswith("/")
    if malformed.any():
        line = malformed.idxmax()
        fail(path, f"expected '<class>/<id>', got '{keys[line]}'", line)
    unknown = ~dish.isin(classes)
    if unknown.any():
        line = unknown.idxmax()
        fail(path, f"'{keys[line]}': class '{dish[line]}' is not in {classes_txt}", line)
    require_unique(path, keys, "image")
    image = str(root / "images") + "/" + keys + ".jpg"
    return pd.DataFrame({"image": image.to_numpy(), "split": split, "dish": dish.to_numpy()})


def read_split_keys(meta: Path, split: str) -> tuple[Path, pd.Series]:
    """The list file read and its ``<class>/<id>`` keys (indexed by line number for a .txt)."""
    txt, js = meta / f"{split}.txt", meta / f"{split}.json"
    require(txt, alternative=js)
    if txt.exists():
        return txt, numbered_lines(txt)
    per_class = read_json(js)
    if not (isinstance(per_class, dict) and all(isinstance(keys, list) and all(isinstance(k, str) for k in keys)
                                                for keys in per_class.values())):
        raise DataError(js, 'expected {"<class>": ["<class>/<id>", ...], ...}')
    return js, pd.Series([key for keys in per_class.values() for key in keys], dtype=str)


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish, with category and cuisine from ``options.taxonomy`` (default: the builtin food101 one)."""
    return attach_taxonomy(read_food101(root), load_taxonomy(options.taxonomy or "food101"))
