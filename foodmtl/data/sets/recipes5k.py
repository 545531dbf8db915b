"""Recipes5k (Bolaños, Ferrà and Radeva, "Food Ingredients Recognition through Multi-label
Learning", ICIAP Workshops 2017): 4,826 recipes from Yummly, each one image with its own ingredient
list, about 50 per Food-101 type.

Layout of the release (http://www.ub.edu/cvub/recipes5k/)::

    Recipes5k/images/<query class>/<image name>.jpg
    Recipes5k/annotations/{train,val,test}_images.txt   '<query class>/<image name>.jpg' a line
    Recipes5k/annotations/{train,val,test}_labels.txt   0-based line of the ingredient files per image
    Recipes5k/annotations/ingredients_Recipes5k.txt     line i: the ','-separated ingredients of recipe i
    Recipes5k/annotations/ingredients_simplified_Recipes5k.txt   the same, simplified (~1,013 names)
    Recipes5k/annotations/classes_Recipes5k.txt         line i: recipe i's name (not read)

What was checked, and where: the release README (copied in Cheng-K/FoodNet and found by content
elsewhere): the folders and files above, that labels point at lines of the ingredient file, that
<query class> is the query used on Yummly and NOT ALL its images belong to that Food-101 class.
The authors' code (MarcBS/food_ingredients_recognition): ``config.py`` (3,213 raw ingredients),
``data_engine/parse_json.py`` (the lists are written one recipe a line with ``','.join``; three
queries were renamed from Food-101's class: cupcakes, chocolate_ice_cream, beef_tacos) and
``data_engine/prepare_data.py`` (vocabulary rule: ``foodmtl/data/formats/ingredient_lists.py``).
Cheng-K/FoodNet ``Food Datasets/Recipes5k/preprocess_recipes5k.ipynb`` filters names such as
``kahl\\u00faa`` and ``p\\u00e2t\\u00e9``: literal escapes in the simplified list.

``ingredient_list``: ``simplified`` (default) or ``raw``. Labels: ``ingredients`` (per recipe) and
``dish``: the image's folder, with the three renamed queries mapped back to Food-101's names
(``cup_cakes``, ``ice_cream``, ``tacos``), so the dish vocabulary matches Food-101's. Quirks are
notes: CRLF, names repeated in a line, literal ``\\uXXXX`` text, renamed folders. A malformed list
line, an index out of range, a label file longer or shorter than its list and an image listed twice
or in two splits are DataErrors naming the file and line. No image is opened.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from foodmtl.data.formats.index_lists import read_split_lists
from foodmtl.data.formats.ingredient_lists import read_ingredient_lists, vocabulary
from foodmtl.data.paths import require_path
from foodmtl.data.sets import LoadOptions
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.taxonomy import attach_categories, load_taxonomy

SOURCE = "recipes5k"
SPLITS = ("train", "val", "test")
LISTS = {"simplified": "ingredients_simplified_Recipes5k.txt", "raw": "ingredients_Recipes5k.txt"}
FOOD101_NAME = {"cupcakes": "cup_cakes", "chocolate_ice_cream": "ice_cream", "beef_tacos": "tacos"}
HOW_TO_GET = ("download Recipes5k from http://www.ub.edu/cvub/recipes5k/, extract it and pass the Recipes5k "
              "folder (holding images/ and annotations/)")


def read_recipes5k(root: str | Path, ingredient_list: str = "simplified") -> SampleTable:
    """One row per listed image with its recipe's ingredients and its Food-101 type."""
    if ingredient_list not in LISTS:
        raise ValueError(f"ingredient_list must be one of {sorted(LISTS)}, got {ingredient_list!r}")
    root = Path(root).expanduser().resolve()
    annotations = root / "annotations"
    require(annotations)
    require(root / "images")
    notes: list[str] = []
    require(annotations / LISTS[ingredient_list])
    recipes = read_ingredient_lists(annotations / LISTS[ingredient_list], notes)
    earlier: dict[Path, pd.Series] = {}
    frame = pd.concat([split_frame(annotations, split, recipes, LISTS[ingredient_list], earlier)
                       for split in SPLITS], ignore_index=True)
    folder = frame["key"].str.split("/", n=1).str[0]
    renamed = folder.isin(FOOD101_NAME)
    if renamed.any():
        notes.append(f"{int(renamed.sum())} image(s) in folders named unlike Food-101's class "
                     f"({', '.join(sorted(folder[renamed].unique()))}): dish set to Food-101's name")
    frame = frame.assign(image=str(root / "images") + "/" + frame["key"], source=SOURCE,
                         dish=folder.replace(FOOD101_NAME))
    vocab = {"dish": sorted(frame["dish"].unique()), "ingredients": vocabulary(recipes)}
    return SampleTable(empty_columns(frame), vocab, notes)


def require(path: Path) -> None:
    require_path(path, "Recipes5k", HOW_TO_GET)


def split_frame(annotations: Path, split: str, recipes: list[tuple[str, ...]], names: str,
                earlier: dict[Path, pd.Series]) -> pd.DataFrame:
    keys, index = read_split_lists(annotations, split, len(recipes), names, earlier, require)
    return pd.DataFrame({"key": keys.to_numpy(), "split": split, "ingredients": [recipes[i] for i in index]})


def load(root: str, options: LoadOptions) -> SampleTable:
    """Dish (query folder) and the recipe's ingredients from ``options.ingredient_list`` (simplified
    or raw); ``taxonomy`` (e.g. the builtin ``food101``) adds category and cuisine by dish name."""
    table = read_recipes5k(root, options.ingredient_list)
    return attach_categories(table, load_taxonomy(options.taxonomy)) if options.taxonomy else table
