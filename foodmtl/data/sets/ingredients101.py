"""Ingredients101 (Bolaños, Ferrà and Radeva, "Food Ingredients Recognition through Multi-label
Learning", ICIAP Workshops 2017) read as Food-101's ingredient source: the authors' ingredient list
of each of Food-101's 101 classes and their train/val/test split of Food-101's images, so
``food101`` images train dish + ingredients without a hand-made taxonomy.

``root`` holds both extracted downloads::

    root/food-101/images/<class>/<id>.jpg                  Food-101 (Bossard et al., ECCV 2014)
    root/Ingredients101/Annotations/classes.txt            Food-101's class names, one a line
    root/Ingredients101/Annotations/ingredients.txt        line i: the ','-separated ingredients of class i
    root/Ingredients101/Annotations/ingredients_simplified.txt   the same, simplified
    root/Ingredients101/Annotations/{train,val,test}_images.txt  '<class>/<id>' a line (no extension)
    root/Ingredients101/Annotations/{train,val,test}_labels.txt  0-based line of classes.txt per image

What was checked, and where: the authors' code (MarcBS/food_ingredients_recognition): README.md
(446 unique ingredients, a train/val/test split of Food-101's images balanced over the 101 types),
``config.py`` (``Annotations/ingredients.txt``, ``Annotations/{split}_labels.txt``, multi-label
with sigmoid + binary cross-entropy) and ``data_engine/prepare_data.py`` (an image's label is a
line number of the ingredients file; vocabulary rule: ``foodmtl/data/formats/ingredient_lists.py``).
Two further public loaders, found by content (the search index names neither repository), list the
``Annotations/`` folder (also train.txt, train_split.txt, val_split.txt, test.txt, *.json: not read
here), read ``{split}_images.txt`` as ``<class>/<id>`` and add ``.jpg`` under Food-101's
``images/``; one counts 227 simplified ingredients, another config 228 (the issue: ~227).

``ingredient_list``: ``simplified`` (default) or ``raw`` (ingredients.txt). Labels: ``dish``
(classes.txt order) and ``ingredients`` (the class's list; vocabulary by frequency over the
classes, ties by first appearance). An image whose folder differs from its label's class keeps the
label and is counted in a note; so are the quirks of the ingredient file. An ingredients file whose
length differs from classes.txt, a malformed line, an index out of range and an image listed twice
or in two splits are DataErrors naming the file and line. No image is opened.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from foodmtl.data.formats.index_lists import folder_mismatches, read_entries, read_split_lists
from foodmtl.data.formats.ingredient_lists import read_ingredient_lists, vocabulary
from foodmtl.data.paths import require_path
from foodmtl.data.sets import LoadOptions
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.taxonomy import attach_categories, load_taxonomy
from foodmtl.errors import DataError

SOURCE = "ingredients101"
SPLITS = ("train", "val", "test")
LISTS = {"simplified": "ingredients_simplified.txt", "raw": "ingredients.txt"}
HOW_TO_GET = ("download Food-101 (https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/) and "
              "Ingredients101 (http://www.ub.edu/cvub/ingredients101/), extract both into one folder "
              "(it then holds food-101/ and Ingredients101/) and pass that folder")


def read_ingredients101(root: str | Path, ingredient_list: str = "simplified") -> SampleTable:
    """One row per listed image with its Food-101 class and that class's ingredients."""
    if ingredient_list not in LISTS:
        raise ValueError(f"ingredient_list must be one of {sorted(LISTS)}, got {ingredient_list!r}")
    root = Path(root).expanduser().resolve()
    annotations, images = root / "Ingredients101" / "Annotations", root / "food-101" / "images"
    require(annotations)
    require(images)
    notes: list[str] = []
    classes = read_classes(annotations / "classes.txt")
    recipes = read_recipes(annotations / LISTS[ingredient_list], len(classes), notes)
    earlier: dict[Path, pd.Series] = {}
    frame = pd.concat([split_frame(annotations, split, classes, earlier) for split in SPLITS], ignore_index=True)
    moved = folder_mismatches(frame["key"], frame["dish"])
    if moved:
        notes.append(f"{moved} image(s) sit in a folder other than their label's class: the label is kept")
    by_class = dict(zip(classes, recipes))
    frame = frame.assign(image=str(images) + "/" + frame["key"] + ".jpg", source=SOURCE,
                         ingredients=frame["dish"].map(by_class))
    return SampleTable(empty_columns(frame), {"dish": classes, "ingredients": vocabulary(recipes)}, notes)


def require(path: Path) -> None:
    require_path(path, "Ingredients101 + Food-101", HOW_TO_GET)


def read_classes(path: Path) -> list[str]:
    require(path)
    classes = read_entries(path)
    again = classes.duplicated()
    if again.any():
        line = int(again.idxmax())
        raise DataError(path, f"class '{classes[line]}' is listed twice", line=line)
    return classes.tolist()


def read_recipes(path: Path, classes: int, notes: list[str]) -> list[tuple[str, ...]]:
    """The ingredient list of each class, in classes.txt order."""
    require(path)
    recipes = read_ingredient_lists(path, notes)
    if len(recipes) != classes:
        raise DataError(path, f"{len(recipes)} ingredient lines for the {classes} classes of classes.txt")
    return recipes


def split_frame(annotations: Path, split: str, classes: list[str], earlier: dict[Path, pd.Series]) -> pd.DataFrame:
    keys, index = read_split_lists(annotations, split, len(classes), "classes.txt", earlier, require)
    return pd.DataFrame({"key": keys.to_numpy(), "split": split, "dish": [classes[i] for i in index]})


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish and the class's ingredients from ``options.ingredient_list`` (simplified or raw);
    ``taxonomy`` (e.g. the builtin ``food101``) adds category and cuisine by dish name."""
    table = read_ingredients101(root, options.ingredient_list)
    return attach_categories(table, load_taxonomy(options.taxonomy)) if options.taxonomy else table
