"""SynthFood in MAFood-121's structure and layout: cuisines x dishes, and per image the set of food
groups its plate shows, which varies within a dish (extras on some plates only, pieces hidden).

The plates are SynthFood's (``foodmtl/synthfood/generate.py``): the cuisine picks the rim colour,
the category the vessel. Each ingredient of the pool below stands for one of MAFood-121's ten food
groups (a synthetic assignment: the names only suggest it), and a dish of the soup category shows
``soup``. An image's food groups are those of the ingredients visible in its mask, plus ``soup``;
a plate that shows none is drawn again. ``generate_mafood121(out)`` writes::

    out/MAFood121/images/<dish>/<file>.jpg     file names in two styles, as in the release
    out/MAFood121/annotations/                 dishes.txt (d_), cuisinestyles.txt (sty_),
        baseIngredients.txt (ff_, ', '-separated), foodgroups.txt (combinations in order of first
        use), {train,val,test}.txt (shuffled) and {split}_lbls_{d,cs,ff}.txt
    out/synthfood.json                         the generation parameters

so ``foodmtl/data/sets/mafood121.py`` reads it unchanged (its docstring cites the real layout).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from foodmtl.synthfood.generate import (CATEGORIES, CUISINES, INGREDIENTS, QUALITY, Dish, draw_plate,
                                        pick_extras, pick_recipes, write_whole)

VERSION = 1
FIRST_ID = 100000
FOOD_GROUPS = ("bread", "dumpling", "egg", "fried_food", "meat", "noodles/pasta", "rice", "seafood", "soup",
               "vegetable")  # MAFood-121's baseIngredients.txt, in its order
GROUP_OF = {"cheese": "bread", "tofu": "dumpling", "egg": "egg", "potato": "fried_food", "beef": "meat",
            "chicken": "meat", "noodles": "noodles/pasta", "rice": "rice", "salmon": "seafood",
            "shrimp": "seafood", "tomato": "vegetable", "carrot": "vegetable", "spinach": "vegetable",
            "bell_pepper": "vegetable", "mushroom": "vegetable", "eggplant": "vegetable"}
POOL = tuple(k for k, ingredient in enumerate(INGREDIENTS, start=1) if ingredient.name in GROUP_OF)
SOUP_CATEGORY = "soup_stew"
SPLITS = ("train", "val", "test")


def generate_mafood121(out: str | Path, cuisines: int = 4, dishes_per_cuisine: int = 3, per_dish: int = 40,
                       size: int = 64, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2,
                       overwrite: bool = False) -> Path:
    """Draw the set into ``out`` (written to ``<out>.tmp-<pid>``, then renamed) and return its path.
    The same arguments give the same bytes; FileExistsError if ``out`` exists (unless ``overwrite``),
    ValueError on bad arguments."""
    counts = split_counts(per_dish, val_fraction, test_fraction)
    if not 1 <= cuisines <= len(CUISINES) or dishes_per_cuisine < 1 or size < 32 or seed < 0:
        raise ValueError(f"need 1 <= cuisines <= {len(CUISINES)}, dishes_per_cuisine >= 1, size >= 32, seed >= 0")
    settings = {"layout": "mafood121", "version": VERSION, "cuisines": cuisines,
                "dishes_per_cuisine": dishes_per_cuisine, "per_dish": per_dish, "size": size, "seed": seed,
                "val_fraction": val_fraction, "test_fraction": test_fraction}
    menu = design_menu(cuisines, dishes_per_cuisine, seed)
    return write_whole(out, overwrite, settings,
                       lambda tmp: write_release(tmp / "MAFood121", menu, counts, size, seed))


def split_counts(per_dish: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Images per dish in each split: at least one in each."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"need val_fraction, test_fraction > 0 summing below 1; got {val_fraction}, {test_fraction}")
    val, test = (max(1, round(per_dish * f)) for f in (val_fraction, test_fraction))
    if per_dish - val - test < 1:
        raise ValueError(f"per_dish={per_dish} leaves no training image")
    return {"train": per_dish - val - test, "val": val, "test": test}


def design_menu(cuisines: int, dishes_per_cuisine: int, seed: int) -> list[Dish]:
    """``dishes_per_cuisine`` dishes in each of ``cuisines`` cuisines, categories cycling over the
    dishes; recipes and extras drawn from the grouped pool (SynthFood's rules keep dishes apart)."""
    count = cuisines * dishes_per_cuisine
    recipes = pick_recipes(count, len(POOL), np.random.default_rng(seed))
    extras = pick_extras(recipes, len(POOL), np.random.default_rng((seed, 1)))
    menu, taken = [], set()
    for i, (recipe, extra) in enumerate(zip(recipes, extras)):
        category, cuisine = CATEGORIES[i % len(CATEGORIES)], CUISINES[i // dishes_per_cuisine]
        ids = tuple(POOL[k - 1] for k in recipe)
        stem = name = f"{cuisine.name}_{INGREDIENTS[ids[0] - 1].name}_{category.noun}"
        k = 1
        while name in taken:
            k += 1
            name = f"{stem}_{k}"
        taken.add(name)
        menu.append(Dish(name, category, cuisine, ids, tuple(POOL[k - 1] for k in extra)))
    return menu


def plate_groups(dish: Dish, mask: np.ndarray) -> tuple[str, ...]:
    """The food groups a plate shows, in FOOD_GROUPS order."""
    shown = {GROUP_OF[INGREDIENTS[k - 1].name] for k in np.unique(mask) if k}
    if dish.category.name == SOUP_CATEGORY:
        shown.add("soup")
    return tuple(group for group in FOOD_GROUPS if group in shown)


def draw(dish: Dish, size: int, seed: int, index: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """One image of ``dish`` and its food groups; seeded per image (and per retry)."""
    for attempt in range(100):
        image, mask = draw_plate(dish, size, np.random.default_rng((seed, index, attempt)))
        groups = plate_groups(dish, mask)
        if groups:
            return image, groups
    raise RuntimeError(f"no plate of {dish.name} shows a food group in 100 draws")


def write_release(root: Path, menu: list[Dish], counts: dict[str, int], size: int, seed: int) -> None:
    """Images and annotations of MAFood-121's layout under ``root``."""
    cuisines = list(dict.fromkeys(d.cuisine.name for d in menu))
    combinations: dict[tuple[str, ...], int] = {}
    rows: dict[str, list[tuple[str, int, int, int]]] = {split: [] for split in SPLITS}
    per_dish = sum(counts.values())
    for p, dish in enumerate(menu):
        (root / "images" / dish.name).mkdir(parents=True)
        for j in range(per_dish):
            image, groups = draw(dish, size, seed, p * per_dish + j)
            file = f"{FIRST_ID + p * per_dish + j}.jpg" if p % 2 == 0 else f"{j + 1}_{1 + j % 2}.jpg"
            Image.fromarray(image).save(root / "images" / dish.name / file, "JPEG", quality=QUALITY)
            split = "train" if j < counts["train"] else "val" if j < counts["train"] + counts["val"] else "test"
            ff = combinations.setdefault(groups, len(combinations))
            rows[split].append((f"{dish.name}/{file}", p, cuisines.index(dish.cuisine.name), ff))
    write_annotations(root / "annotations", menu, cuisines, list(combinations), rows, seed)


def write_annotations(folder: Path, menu: list[Dish], cuisines: list[str], combinations: list[tuple[str, ...]],
                      rows: dict[str, list[tuple[str, int, int, int]]], seed: int) -> None:
    """The release's text files: LF lines, no final newline (as the public copy has them)."""
    folder.mkdir(parents=True)
    write_lines(folder / "dishes.txt", [f"d_{d.name}" for d in menu])
    write_lines(folder / "cuisinestyles.txt", [f"sty_{c}" for c in cuisines])
    write_lines(folder / "baseIngredients.txt", [", ".join(f"ff_{g}" for g in FOOD_GROUPS)])
    write_lines(folder / "foodgroups.txt", [",".join(f"ff_{g}" for g in c) for c in combinations])
    rng = np.random.default_rng((seed, 2))
    for split, listed in rows.items():
        listed = [listed[i] for i in rng.permutation(len(listed))]  # the release's lists are shuffled
        write_lines(folder / f"{split}.txt", [r[0] for r in listed])
        for column, suffix in ((1, "d"), (2, "cs"), (3, "ff")):
            write_lines(folder / f"{split}_lbls_{suffix}.txt", [str(r[column]) for r in listed])


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines))
