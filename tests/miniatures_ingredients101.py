"""Format-exact miniature of Food-101 + Ingredients101 side by side (layout:
``foodmtl/data/sets/ingredients101.py``): three classes, tiny JPEGs under ``food-101/images``."""
from __future__ import annotations

from pathlib import Path

from miniatures import make_food101

CLASSES = ("apple_pie", "baklava", "pizza")
RAW = ("apple,sugar,butter,flour,cinnamon", "phyllo dough,walnuts,butter,honey,sugar",
       "flour,tomato sauce,mozzarella cheese,basil,olive oil")
SIMPLIFIED = ("apple,sugar,butter,flour", "phyllo,walnut,butter,honey,sugar", "flour,tomato,cheese,basil,oil")
# (class, image id) per split: ids of the Food-101 miniature (class c: 100000 + 1000 c + i)
SPLITS = {"train": [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)], "val": [(0, 2), (1, 2), (2, 2)],
          "test": [(0, 3), (1, 3), (2, 3), (0, 4)]}


def make_ingredients101(root: Path, splits: dict[str, list[tuple[int, int]]] | None = None) -> Path:
    """``root/food-101`` (the Food-101 miniature) and ``root/Ingredients101/Annotations``."""
    make_food101(root / "food-101", CLASSES)
    annotations = root / "Ingredients101" / "Annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    write(annotations / "classes.txt", CLASSES)
    write(annotations / "ingredients.txt", RAW)
    write(annotations / "ingredients_simplified.txt", SIMPLIFIED)
    for split, rows in (SPLITS if splits is None else splits).items():
        write(annotations / f"{split}_images.txt", [f"{CLASSES[c]}/{100000 + 1000 * c + i}" for c, i in rows])
        write(annotations / f"{split}_labels.txt", [str(c) for c, _ in rows])
    return root


def write(path: Path, lines) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))
