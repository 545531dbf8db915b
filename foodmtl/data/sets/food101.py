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
import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.formats.split_lists import fail, require_listed_once
from foodmtl.data.paths import numbered_lines, read_json, require_path
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
    lists, earlier = {split: read_split_keys(root / "meta", split) for split in SPLITS}, {}
    frame = pd.concat([split_frame(root, split, *lists[split], classes, classes_txt, earlier) for split in SPLITS],
                      ignore_index=True)
    frame["source"] = SOURCE
    return SampleTable(empty_columns(frame), {"dish": classes})


def require(path: Path, alternative: Path | None = None) -> None:
    require_path(path, "Food-101", HOW_TO_GET, alternative)


def read_classes(path: Path) -> list[str]:
    require(path)
    classes = numbered_lines(path)
    if classes.empty:
        raise DataError(path, "lists no classes")
    require_listed_once(path, classes, what="class")
    return classes.tolist()


def split_frame(root: Path, split: str, path: Path, keys: pd.Series, classes: list[str],
                classes_txt: Path, earlier: dict[str, pd.Series]) -> pd.DataFrame:
    """Rows of one split: image path, split name and dish, checked against classes.txt and the
    ``earlier`` splits' lists (which it joins)."""
    dish = keys.str.split("/", n=1).str[0]
    malformed = ~keys.str.contains("/", regex=False) | keys.str.endswith("/")
    if malformed.any():
        line = malformed.idxmax()
        fail(path, f"expected '<class>/<id>', got '{keys[line]}'", line)
    unknown = ~dish.isin(classes)
    if unknown.any():
        line = unknown.idxmax()
        fail(path, f"'{keys[line]}': class '{dish[line]}' is not in {classes_txt}", line)
    require_listed_once(path, keys, earlier=earlier, what="image", known_as=str(path))
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
