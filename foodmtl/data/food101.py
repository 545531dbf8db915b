"""Food-101 (Bossard et al., ECCV 2014) as a SampleTable, read from its published layout.

``root/images/<class>/<id>.jpg``, ``root/meta/classes.txt`` (one class a line) and the
split lists ``root/meta/{train,test}.txt`` (lines ``<class>/<id>``, no extension); the
``{split}.json`` files (``{class: ["<class>/<id>", ...]}``) stand in when a .txt is missing.
Paths come from the lists alone: no image is opened (``data_prep/verify.py`` does that).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from foodmtl.data.paths import require_path
from foodmtl.data.table import SampleTable, empty_columns

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
    classes = read_classes(root / "meta" / "classes.txt")
    frame = pd.concat([split_frame(root, split, classes) for split in SPLITS], ignore_index=True)
    frame["source"] = SOURCE
    return SampleTable(empty_columns(frame), {"dish": classes})


def require(path: Path, alternative: Path | None = None) -> None:
    require_path(path, "Food-101", HOW_TO_GET, alternative)


def read_classes(path: Path) -> list[str]:
    require(path)
    classes = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(set(classes)) != len(classes):
        raise ValueError(f"{path}: duplicate class names")
    return classes


def split_frame(root: Path, split: str, classes: list[str]) -> pd.DataFrame:
    """Rows of one split: image path, split name and dish, checked against classes.txt."""
    path, keys = read_split_keys(root / "meta", split)
    dish = keys.str.split("/", n=1).str[0]
    bad = ~keys.str.contains("/", regex=False) | ~dish.isin(classes)
    if bad.any():
        line = bad.idxmax()
        where = f"{path}, line {line}" if path.suffix == ".txt" else str(path)
        raise ValueError(f"{where}: '{keys[line]}' is not '<class>/<id>' with a class of "
                         f"{root / 'meta' / 'classes.txt'}")
    image = str(root / "images") + "/" + keys + ".jpg"
    return pd.DataFrame({"image": image.to_numpy(), "split": split, "dish": dish.to_numpy()})


def read_split_keys(meta: Path, split: str) -> tuple[Path, pd.Series]:
    """The list file read and its ``<class>/<id>`` keys (indexed by line number for a .txt)."""
    txt, js = meta / f"{split}.txt", meta / f"{split}.json"
    require(txt, alternative=js)
    if txt.exists():
        lines = pd.Series(txt.read_text().splitlines(), dtype=str).str.strip()
        lines.index += 1  # line numbers, for error messages
        return txt, lines[lines != ""]
    keys = [key for per_class in json.loads(js.read_text()).values() for key in per_class]
    return js, pd.Series(keys, dtype=str)
