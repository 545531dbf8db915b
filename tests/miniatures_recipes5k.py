"""Format-exact miniature of Recipes5k (layout: ``foodmtl/data/sets/recipes5k.py``): four recipes of
three query folders, one named unlike Food-101's class (``cupcakes``), and the quirks some copies
have: CRLF lines, a name repeated in a line, literal ``\\uXXXX`` text."""
from __future__ import annotations

from pathlib import Path

from miniatures import write_jpeg

# (query folder, image name, recipe name, raw ingredients, simplified ingredients)
RECIPES = (
    ("apple_pie", "0_dutch_apple_pie.jpg", "Dutch Apple Pie", "apples,sugar,unsalted butter,flour",
     "apple,sugar,butter,flour"),
    ("apple_pie", "1_apple_pie_kahlua.jpg", "Apple Pie Kahlua", "apples,kahl\\u00faa,sugar,sugar",
     "apple,kahl\\u00faa,sugar,sugar"),
    ("cupcakes", "0_vanilla_cupcakes.jpg", "Vanilla Cupcakes", "flour,sugar,eggs,vanilla extract",
     "flour,sugar,egg,vanilla"),
    ("pizza", "0_margherita_pizza.jpg", "Margherita Pizza", "pizza dough,tomato sauce,fresh mozzarella,basil",
     "dough,tomato,mozzarella,basil"),
)
SPLITS = {"train": [0, 2], "val": [1], "test": [3]}


def make_recipes5k(root: Path, crlf: bool = True, splits: dict[str, list[int]] | None = None) -> Path:
    """``root`` = the Recipes5k folder: ``images/<query>/<name>.jpg`` and ``annotations/``."""
    end = "\r\n" if crlf else "\n"
    annotations = root / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    for k, (folder, name, *_) in enumerate(RECIPES):
        write_jpeg(root / "images" / folder / name, seed=k)
    for file, column in (("classes_Recipes5k.txt", 2), ("ingredients_Recipes5k.txt", 3),
                         ("ingredients_simplified_Recipes5k.txt", 4)):
        (annotations / file).write_bytes("".join(f"{r[column]}{end}" for r in RECIPES).encode())
    for split, recipes in (SPLITS if splits is None else splits).items():
        (annotations / f"{split}_images.txt").write_text("".join(f"{RECIPES[i][0]}/{RECIPES[i][1]}\n" for i in recipes))
        (annotations / f"{split}_labels.txt").write_text("".join(f"{i}\n" for i in recipes))
    return root
