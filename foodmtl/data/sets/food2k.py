"""Food2K (Min et al., "Large Scale Visual Food Recognition", TPAMI 2023) and Food1K (the
1,000-class data of the ICCV 2021 LargeFineFoodAI recognition challenge) as SampleTables.

Both releases list their images in ``<split>_finetune.txt`` files, one ``<folder>/<file> <label>``
line per image, the folder being the class id. Paths come from the lists alone, read by
``foodmtl.data.formats.label_list`` (a million lines in about a second); no image is opened here
(``data_prep/verify.py`` does that).

What was checked, and where (the release README itself is only sent on request, so the
layout is pieced together from the authors' and participants' loaders):

- Official PRENet code (github.com/Liuyuxinict/prenet, ``data_loader.py``): a list line is
  split on one space into path and int label, and the image is read at ``image_path + path``.
- Food2K download names (visym/vipy ``vipy/data/food2k.py``): ``Food2k_complete.tar.gz`` (the
  images, class folders ``0`` .. ``1999``) and ``Food2k_label.tar.gz``, which unpacks to
  ``Food2k_label/train_finetune.txt``; loaders of other users read ``train_finetune.txt`` and
  ``val_finetune.txt`` from ``Food2k_complete/`` and the class names from
  ``Food2k_complete/food2k_label2name_en.txt``, lines ``<id>--<name>`` whose id is the folder
  (some parse it with ``int()``, i.e. zero-padded ids are possible).
- Food1K: ``Train.tar`` and ``Val.tar`` come from the same ``foodai-workshop-challenge``
  bucket as Food2K (a participant's download script); participants' configs and loaders read
  ``Train/<0..999>/``, ``Val/<0..999>/`` and ``label/{train,val}_finetune.txt`` (one has them
  in ``Label/label/``), ``<dir>/<file> <label>`` lines relative to ``Train/`` and ``Val/``.

Not verified, so both plausible forms are accepted: ``test_finetune.txt`` (read when present);
a leading ``/`` or ``\\`` separators in list paths; a path without extension (``.jpg`` is
added); tab instead of space; ``<id> <name>`` instead of ``<id>--<name>``. The Food2K English
names repeat (the paper's supplementary class table has 1,944 distinct names for 2,000 ids), so
a repeated name gets its id appended (``Fried shrimp [376]``) to keep one class per id. The
Food1K release publishes no class names: its classes are ``food1k_<id>``. Its test images
carry no labels and their layout is unverified, so they are not read.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from foodmtl.errors import DataError
from foodmtl.data.formats.label_list import read_label_list
from foodmtl.data.path_array import PathArray
from foodmtl.data.paths import read_numbered_names, require_path
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions
from foodmtl.data.taxonomy import attach_taxonomy, load_taxonomy

FOOD2K_IMAGES = "Food2k_complete"
FOOD2K_NAMES = "food2k_label2name_en.txt"
FOOD2K_SPLITS = ("train", "val", "test")
FOOD1K_IMAGES = {"train": "Train", "val": "Val"}
FOOD1K_CLASSES = 1000
NAME_LINE = re.compile(r"(\d+)\s*(?:--|\s)\s*(\S.*)")  # also "<id> <name>"

FOOD2K_HOW_TO_GET = (
    "request Food2K from its authors (project page http://123.57.42.89/FoodProject.html), extract "
    "Food2k_complete.tar.gz (class folders 0..1999 and food2k_label2name_en.txt) and "
    "Food2k_label.tar.gz (train/val/test_finetune.txt) into one folder; then check it with "
    "`python data_prep/verify.py --dataset food2k --root DIR` (DIR: that folder or Food2k_complete)"
)
FOOD1K_HOW_TO_GET = (
    "get the ICCV 2021 LargeFineFoodAI recognition challenge data (Train.tar, Val.tar and the "
    "label files train_finetune.txt, val_finetune.txt) and extract it into one folder holding "
    "Train/, Val/ and label/; then check it with `python data_prep/verify.py --dataset food1k --root DIR`"
)


def read_food2k(root: str | Path) -> SampleTable:
    """Rows of every split list found; ``vocab["dish"]`` in class-id order from the name list."""
    root = Path(root).expanduser().resolve()
    require_path(root, "Food2K", FOOD2K_HOW_TO_GET)
    images = root / FOOD2K_IMAGES if (root / FOOD2K_IMAGES).is_dir() else root
    # the lists sit in Food2k_complete/ or, unpacked from Food2k_label.tar.gz, beside it
    folders = (images, images / "Food2k_label", images.parent, images.parent / "Food2k_label")
    names_file = find(folders, FOOD2K_NAMES)
    require_path(names_file or images / FOOD2K_NAMES, "Food2K", FOOD2K_HOW_TO_GET)
    lists = {split: find(folders, f"{split}_finetune.txt") for split in FOOD2K_SPLITS}
    require_path(lists["train"] or images / "train_finetune.txt", "Food2K", FOOD2K_HOW_TO_GET,
                 alternative=images.parent / "Food2k_label" / "train_finetune.txt")
    found = {split: path for split, path in lists.items() if path is not None}
    return build_table(found, dict.fromkeys(found, images), read_label_names(names_file), "food2k")


def read_food1k(root: str | Path) -> SampleTable:
    """Train and val rows; classes ``food1k_0`` .. ``food1k_999`` (the release names none)."""
    root = Path(root).expanduser().resolve()
    require_path(root, "Food1K", FOOD1K_HOW_TO_GET)
    folders = (root / "label", root / "Label" / "label", root / "Label", root)
    lists = {}
    for split, images in FOOD1K_IMAGES.items():
        require_path(root / images, "Food1K", FOOD1K_HOW_TO_GET)
        lists[split] = find(folders, f"{split}_finetune.txt")
        require_path(lists[split] or root / "label" / f"{split}_finetune.txt", "Food1K", FOOD1K_HOW_TO_GET)
    names = [f"food1k_{i}" for i in range(FOOD1K_CLASSES)]
    return build_table(lists, {s: root / d for s, d in FOOD1K_IMAGES.items()}, names, "food1k")


def find(folders: tuple[Path, ...], name: str) -> Path | None:
    """The first ``folder/name`` that exists."""
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def read_label_names(path: Path) -> list[str]:
    """Class names by id from ``<id>--<name>`` lines, ids 0, 1, 2, ... in file order; a name that
    repeats gets its id appended."""
    names = read_numbered_names(path, NAME_LINE, "--<name>")
    counts = pd.Series(names).value_counts()
    return [f"{name} [{i}]" if counts[name] > 1 else name for i, name in enumerate(names)]


def build_table(lists: dict[str, Path], images: dict[str, Path], names: list[str], source: str) -> SampleTable:
    """The rows of every list; ``image`` a PathArray (``foodmtl.data.path_array``): no ``str`` per image.
    Each list's own arrays are dropped as soon as they are joined (the reader's peak memory)."""
    parsed = {split: read_label_list(path, len(names), images[split]) for split, path in lists.items()}
    sizes = [len(rows.paths) for rows in parsed.values()]
    paths = PathArray._concat_same_type([rows.paths for rows in parsed.values()])
    labels = np.concatenate([rows.labels for rows in parsed.values()])
    lines = {lists[split]: rows.lines for split, rows in parsed.items()}
    del parsed
    refuse_duplicates(paths, lines)
    frame = pd.DataFrame({
        "image": paths,
        "split": np.repeat(np.asarray(list(lists), dtype=object), sizes),
        "dish": np.asarray(names, dtype=object)[labels],
        "source": source,
    })
    return SampleTable(empty_columns(frame, compact=True), {"dish": names})


def refuse_duplicates(paths: PathArray, lines: dict[Path, np.ndarray]) -> None:
    """An image listed twice, in one list or in two (``lines``: each list's line numbers, in the
    order of ``paths``), fails naming both lines. Paths whose hashes collide are compared in full."""
    hashes = np.fromiter(map(hash, paths), np.int64, len(paths))
    order = np.argsort(hashes, kind="stable")
    same = np.flatnonzero(hashes[order[1:]] == hashes[order[:-1]])
    if not same.size:
        return
    places = [(where, line) for where, numbers in lines.items() for line in numbers.tolist()]
    first: dict[str, int] = {}
    for i in np.unique(np.concatenate([order[same], order[same + 1]])).tolist():
        path = paths[i]
        if path in first:
            (where, line), (other, other_line) = places[i], places[first[path]]
            raise DataError(where, f"{path} is listed twice (also {other}, line {other_line})", line=line)
        first[path] = i


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish only by default: the builtin taxonomies match 1 of its 2,000 names (24 after normalising;
    see experiments/food2k/dish.yaml); ``taxonomy=my.csv`` joins a CSV keyed by its names."""
    table = read_food2k(root)
    return attach_taxonomy(table, load_taxonomy(options.taxonomy)) if options.taxonomy else table
