"""Aligned list files, as the University of Barcelona food releases ship them (MAFood-121,
Ingredients101, Recipes5k): a file of image paths and label files whose line i labels image i, and
names files whose line i is class (or recipe) i (VireoFood-172's name lists follow the same rule).

Line i is entry i, so a blank line before the last entry is a DataError; blank lines after it are
ignored (the releases end with or without a final newline). CRLF line ends and a byte-order mark
read too. An index that is not a whole number in range, or a label file whose length differs from
its image list, is a DataError naming the file and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from foodmtl.data.formats.split_lists import require_listed_once
from foodmtl.data.paths import read_text
from foodmtl.errors import DataError


def read_entries(path: Path, text: str | None = None) -> pd.Series:
    """The stripped lines of ``path`` (or of ``text``, its contents), indexed by line number from 1."""
    lines = pd.Series((read_text(path) if text is None else text).splitlines(), dtype=str).str.strip()
    lines.index += 1
    named = lines[lines != ""]
    if named.empty:
        raise DataError(path, "lists nothing")
    blank = lines.loc[:named.index[-1]] == ""
    if blank.any():
        raise DataError(path, f"blank line: line i is entry i, so every line up to {named.index[-1]} needs one",
                        line=int(blank.idxmax()))
    return named


def read_indices(path: Path, count: int, names: str, images: pd.Series, images_path: Path) -> np.ndarray:
    """0-based indices below ``count`` (into the file ``names``), one per line of ``images``."""
    lines = read_entries(path)
    if len(lines) != len(images):
        raise DataError(path, f"{len(lines)} labels for the {len(images)} images of {images_path.name}")
    number = pd.to_numeric(lines.where(lines.str.fullmatch(r"\d+")), errors="coerce")
    bad = ~number.between(0, count - 1)
    if bad.any():
        line = int(bad.idxmax())
        raise DataError(path, f"'{lines[line]}' is not an index 0..{count - 1} into {names}", line=line)
    return number.to_numpy(dtype=np.int64)


def require_image_key(path: Path, keys: pd.Series) -> None:
    """Every entry is ``<folder>/<file>`` (the releases list images under one folder per class)."""
    bad = ~keys.str.fullmatch(r"[^/\\]+/[^/\\]+")
    if bad.any():
        line = int(bad.idxmax())
        raise DataError(path, f"expected '<folder>/<file>', got '{keys[line]}'", line=line)


def folder_mismatches(keys: pd.Series, labels: pd.Series) -> int:
    """How many ``<folder>/<file>`` keys sit in a folder other than their label's name."""
    return int((keys.str.split("/", n=1).str[0].to_numpy() != labels.to_numpy()).sum())


def read_split_lists(annotations: Path, split: str, count: int, names: str, earlier: dict[Path, pd.Series],
                     require: Callable[[Path], None]) -> tuple[pd.Series, np.ndarray]:
    """``{split}_images.txt`` (``<folder>/<id>`` keys, each listed once across splits) and the class
    indices of ``{split}_labels.txt`` aligned with it (Ingredients101, Recipes5k); ``require`` raises
    the data set's own message for a missing file."""
    listed, labels = annotations / f"{split}_images.txt", annotations / f"{split}_labels.txt"
    require(listed)
    require(labels)
    keys = read_entries(listed)
    require_image_key(listed, keys)
    require_listed_once(listed, keys, keys, earlier)
    return keys, read_indices(labels, count, names, keys, listed)
