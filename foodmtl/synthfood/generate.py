"""SynthFood: a small synthetic food data set, drawn locally, written in the published layouts.

Every dish is a recipe of 2-4 ingredients from a fixed pool, and every ingredient has its own
colour, shape and texture, so a dish is recognisable by the set of ingredients on its plate.
Category and cuisine also show, as they roughly do in photos: the category picks the vessel
(soup in a bowl of broth, sandwiches on a board) and the cuisine the colour of its rim.

Plates vary per image, as real ones do: each dish also has 1-2 optional extras (garnishes,
sides) that are on some plates only, and the portion (number and size of pieces) changes from
plate to plate. Each ingredient has a mass per visible pixel and USDA-like energy and macros per
gram, so every image has a true mass, calories, fat, carb and protein that its pixels determine
(sum over the ingredients of visible pixels x grams per pixel x nutrients per gram; what a
utensil hides does not count), and per-image ingredient labels (those visible) that differ from
the dish's recipe in the taxonomy. ``generate_synthfood(out)`` writes::

    out/food101/images/<dish>/<id>.jpg         meta/classes.txt, labels.txt, {train,test}.txt|.json
    out/foodseg103/category_id.txt             Images/img_dir/<split>/<id>.jpg, Images/ann_dir/<split>/<id>.png
    out/foodseg103/instances_<split>.json      COCO instances: connected regions of the masks (synthfood_instances.py)
    out/nutrition5k/metadata/dish_metadata_cafe1.csv, ingredients_metadata.csv,
        dish_ids/splits/rgb_{train,test}_ids.txt, imagery/realsense_overhead/dish_<id>/rgb.png
    out/taxonomy.csv                           dish,category,cuisine,ingredients (the recipe)
    out/val.txt                                the validation split: <dish>/<id> keys of training images
    out/synthfood.json                         the generation parameters

so the Food-101, FoodSeg103, Nutrition5k and taxonomy readers load it unchanged. The published
layouts have train and test only; SynthFood's own ``val.txt`` names the training images that are its
validation split (the last ``val_fraction`` of each dish's training images), which the SynthFood
reader splits off (``foodmtl/data/sets/synthfood.py``). Masks hold 0
for table and plate and k for ingredient k of category_id.txt.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image

from foodmtl.data.validation import held_out_count
from foodmtl.synthfood.instances import write_instance_json

VERSION = 3  # 3: val.txt
FIRST_ID = 100000  # image ids are numbers of 6+ digits, like Food-101's
QUALITY = 90
OCCLUSION = 0.3  # chance that a utensil lies across the plate
EXTRA_CHANCE = 0.5  # chance that each of a dish's optional extras is on a plate
REFERENCE_SIDE = 128  # grams per pixel are given at this image side; other sizes scale by area


class Ingredient(NamedTuple):
    name: str
    rgb: tuple[int, int, int]
    shape: str    # circle | ellipse | rectangle | blob
    texture: str  # flat | stripes | dots | noise
    grams_per_pixel: float  # at REFERENCE_SIDE: thin leaves weigh little, a slab of beef a lot
    kcal: float   # per gram, and grams of fat, carb, protein per gram (USDA-like, rounded)
    fat: float
    carb: float
    protein: float


class Category(NamedTuple):
    name: str
    noun: str    # used in dish names
    vessel: str  # shape of the plate, bowl or board
    rgb: tuple[int, int, int]


class Cuisine(NamedTuple):
    name: str
    rim: tuple[int, int, int]


class Dish(NamedTuple):
    name: str
    category: Category
    cuisine: Cuisine
    ingredients: tuple[int, ...]  # the recipe: 1-based ids into INGREDIENTS (= mask values), main one first
    extras: tuple[int, ...] = ()  # optional: each on a plate with probability EXTRA_CHANCE


# Ordered so that any prefix is as easy to tell apart as possible: the first 16 differ in
# colour and each has its own (shape, texture) pair. Names come from the builtin vocabulary.
INGREDIENTS = tuple(Ingredient(*row) for row in (
    ("tomato", (210, 40, 35), "circle", "dots", 0.05, 0.18, 0.002, 0.039, 0.009),
    ("basil", (60, 140, 50), "ellipse", "stripes", 0.01, 0.23, 0.006, 0.027, 0.032),
    ("rice", (240, 236, 220), "ellipse", "noise", 0.08, 1.30, 0.003, 0.280, 0.027),
    ("carrot", (240, 130, 30), "rectangle", "stripes", 0.06, 0.41, 0.002, 0.096, 0.009),
    ("egg", (250, 205, 50), "circle", "flat", 0.05, 1.43, 0.095, 0.007, 0.126),
    ("eggplant", (100, 45, 115), "ellipse", "flat", 0.05, 0.25, 0.002, 0.059, 0.010),
    ("berries", (60, 65, 165), "circle", "noise", 0.04, 0.57, 0.003, 0.145, 0.007),
    ("chocolate", (85, 50, 30), "rectangle", "flat", 0.07, 5.46, 0.310, 0.610, 0.049),
    ("salmon", (250, 150, 120), "blob", "flat", 0.08, 2.08, 0.130, 0.000, 0.200),
    ("olive", (40, 45, 30), "ellipse", "dots", 0.04, 1.15, 0.107, 0.063, 0.008),
    ("mushroom", (170, 135, 100), "blob", "stripes", 0.03, 0.22, 0.003, 0.033, 0.031),
    ("beetroot", (165, 30, 90), "rectangle", "noise", 0.06, 0.43, 0.002, 0.096, 0.016),
    ("lime", (150, 200, 60), "circle", "stripes", 0.04, 0.30, 0.002, 0.106, 0.007),
    ("cheese", (250, 225, 130), "rectangle", "dots", 0.07, 4.02, 0.330, 0.013, 0.250),
    ("spinach", (30, 90, 40), "blob", "noise", 0.01, 0.23, 0.004, 0.036, 0.029),
    ("avocado", (185, 205, 100), "blob", "dots", 0.06, 1.60, 0.147, 0.085, 0.020),
    ("beef", (130, 60, 45), "rectangle", "noise", 0.09, 2.50, 0.150, 0.000, 0.260),
    ("corn", (245, 220, 80), "circle", "noise", 0.05, 0.96, 0.015, 0.210, 0.034),
    ("noodles", (235, 200, 130), "rectangle", "stripes", 0.07, 1.38, 0.021, 0.250, 0.045),
    ("shrimp", (245, 125, 105), "blob", "stripes", 0.06, 0.99, 0.003, 0.002, 0.240),
    ("cucumber", (150, 200, 130), "circle", "dots", 0.04, 0.15, 0.001, 0.036, 0.007),
    ("tofu", (238, 232, 205), "rectangle", "flat", 0.07, 0.76, 0.048, 0.019, 0.080),
    ("seaweed", (25, 55, 45), "rectangle", "noise", 0.01, 0.45, 0.006, 0.091, 0.030),
    ("potato", (220, 185, 120), "blob", "noise", 0.08, 0.77, 0.001, 0.170, 0.020),
    ("chicken", (225, 195, 150), "blob", "flat", 0.08, 1.65, 0.036, 0.000, 0.310),
    ("onion", (230, 210, 235), "circle", "stripes", 0.03, 0.40, 0.001, 0.093, 0.011),
    ("bell_pepper", (40, 170, 70), "rectangle", "flat", 0.03, 0.20, 0.002, 0.046, 0.009),
    ("strawberry", (225, 55, 80), "ellipse", "dots", 0.05, 0.32, 0.003, 0.077, 0.007),
    ("pineapple", (250, 230, 90), "rectangle", "stripes", 0.06, 0.50, 0.001, 0.130, 0.005),
    ("coconut", (250, 250, 245), "circle", "flat", 0.05, 3.54, 0.330, 0.150, 0.033),
    ("peanut", (200, 150, 90), "ellipse", "noise", 0.04, 5.67, 0.490, 0.160, 0.260),
    ("parsley", (70, 160, 60), "blob", "stripes", 0.01, 0.36, 0.008, 0.063, 0.030),
))

# Names follow the builtin Food-101 taxonomy, so SynthFood runs exercise the same vocabularies.
CATEGORIES = tuple(Category(*row) for row in (
    ("salad", "salad", "circle", (245, 245, 240)),
    ("soup_stew", "soup", "circle", (200, 120, 60)),
    ("pasta_noodles", "noodles", "ellipse", (235, 235, 235)),
    ("rice_grain", "rice_bowl", "circle", (200, 205, 210)),
    ("sandwich_burger", "sandwich", "rectangle", (170, 120, 70)),
    ("dessert", "tart", "circle", (250, 235, 240)),
    ("seafood", "platter", "ellipse", (190, 215, 230)),
    ("meat_dish", "grill", "rectangle", (60, 60, 60)),
))
CUISINES = tuple(Cuisine(*row) for row in (
    ("italian", (30, 110, 60)),
    ("japanese", (20, 20, 20)),
    ("mexican", (230, 140, 30)),
    ("indian", (180, 140, 40)),
    ("french", (40, 60, 150)),
    ("chinese", (180, 30, 30)),
    ("thai", (120, 60, 140)),
    ("american", (225, 225, 225)),
))
TABLES = ((190, 150, 105), (110, 75, 50), (120, 120, 125), (90, 120, 170), (215, 205, 185), (80, 120, 90))


def generate_synthfood(out: str | Path, dishes: int = 12, per_dish: int = 60, size: int = 128, seed: int = 0,
                       test_fraction: float = 0.2, overwrite: bool = False, val_fraction: float = 0.1) -> Path:
    """Draw SynthFood into ``out`` and return its resolved path.

    The same arguments give the same bytes. Everything is written to ``<out>.tmp-<pid>`` first and
    renamed at the end, so ``out`` never holds a partial set. Raises FileExistsError if ``out``
    exists (unless ``overwrite``) and ValueError on bad arguments.
    """
    n_test = held_out_per_dish(dishes, per_dish, size, seed, test_fraction)
    n_val = validation_per_dish(per_dish - n_test, val_fraction)
    settings = {"version": VERSION, "dishes": dishes, "per_dish": per_dish, "size": size, "seed": seed,
                "test_fraction": test_fraction, "val_fraction": val_fraction}
    return write_whole(out, overwrite, settings, lambda tmp: write_synthfood(
        tmp, design_dishes(dishes, seed), per_dish, size, seed, n_test, n_val))


def write_whole(out: str | Path, overwrite: bool, settings: dict, write: Callable[[Path], None]) -> Path:
    """``write(folder)`` into ``<out>.tmp-<pid>`` with ``settings`` as its ``synthfood.json``, then renamed
    to ``out``: ``out`` never holds a partial set. FileExistsError if ``out`` exists (unless ``overwrite``)."""
    out = Path(out).expanduser().resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; remove it or pass overwrite=True (--overwrite)")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        (tmp / "synthfood.json").write_text(json.dumps(settings, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def held_out_per_dish(dishes: int, per_dish: int, size: int, seed: int, test_fraction: float) -> int:
    """Test images per dish (at least one, and at least one left for training); checks the arguments."""
    if dishes < 1 or per_dish < 2 or size < 32 or seed < 0:
        raise ValueError(f"need dishes >= 1, per_dish >= 2, size >= 32 and seed >= 0; got dishes={dishes}, "
                         f"per_dish={per_dish}, size={size}, seed={seed}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    return held_out_count(per_dish, test_fraction)


def validation_per_dish(n_train: int, val_fraction: float) -> int:
    """Validation images among a dish's ``n_train`` training images: at least one where
    ``val_fraction`` > 0 and two are there, always leaving one to train on."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    return held_out_count(n_train, val_fraction)


def ingredient_count(dishes: int) -> int:
    # At least 8 for variety, but at most 2 per dish: every ingredient then appears in some recipe.
    return min(len(INGREDIENTS), max(dishes, min(8, 2 * dishes)))


def design_dishes(dishes: int, seed: int) -> list[Dish]:
    """The menu: ``dishes`` dishes sorted by name, each with its category, cuisine and recipe.

    Categories cycle with the dish index and cuisines too, shifted by one each cycle: both are
    spread over the dishes, neither predicts the other, and each has >= 2 dishes when dishes >= 2.
    """
    rng = np.random.default_rng(seed)
    recipes = pick_recipes(dishes, ingredient_count(dishes), rng)
    extras = pick_extras(recipes, ingredient_count(dishes), np.random.default_rng((seed, 1)))
    n_categories = min(len(CATEGORIES), max(1, dishes // 2))
    n_cuisines = min(len(CUISINES), max(1, dishes // 3))
    menu, taken = [], set()
    for i, recipe in enumerate(recipes):
        category = CATEGORIES[i % n_categories]
        cuisine = CUISINES[(i % n_categories + i // n_categories) % n_cuisines]
        stem = f"{cuisine.name}_{INGREDIENTS[recipe[0] - 1].name}_{category.noun}"
        name, k = stem, 1
        while name in taken:
            k += 1
            name = f"{stem}_{k}"
        taken.add(name)
        menu.append(Dish(name, category, cuisine, recipe, extras[i]))
    return sorted(menu)


def pick_extras(recipes: list[tuple[int, ...]], n_ingredients: int,
                rng: np.random.Generator) -> list[tuple[int, ...]]:
    """1-2 optional ingredients per recipe, such that no plate of one dish can hold exactly the
    ingredients of a plate of another (a plate holds its recipe and some of its extras)."""
    chosen: list[tuple[int, ...]] = []
    for recipe in recipes:
        pool = [k for k in range(1, n_ingredients + 1) if k not in recipe]
        for _ in range(100):
            size = min(len(pool), int(rng.integers(1, 3)))
            extra = tuple(int(k) for k in rng.choice(pool, size=size, replace=False)) if size else ()
            if all(not plates_can_match(recipe, extra, r, e) for r, e in zip(recipes, chosen)):
                break
        else:
            extra = ()
        chosen.append(extra)
    return chosen


def plates_can_match(recipe_a, extras_a, recipe_b, extras_b) -> bool:
    """Whether some plate of dish a and some plate of dish b hold the same ingredient set."""
    return set(recipe_a) <= set(recipe_b) | set(extras_b) and set(recipe_b) <= set(recipe_a) | set(extras_a)


def pick_recipes(count: int, n_ingredients: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """``count`` recipes of 2-4 ingredient ids; unused ingredients come first so all get used.

    Any two recipes differ in at least two ingredients, so one hidden or cropped-away piece
    does not turn one dish into another.
    """
    recipes: list[tuple[int, ...]] = []
    used: set[int] = set()
    for _ in range(count):
        for _ in range(10000):
            k = min(n_ingredients, int(rng.integers(2, 5)))
            fresh = [i for i in rng.permutation(n_ingredients) + 1 if i not in used]
            rest = [i for i in rng.permutation(n_ingredients) + 1 if i in used]
            recipe = tuple(int(i) for i in (fresh + rest)[:k])
            if all(len(set(recipe) ^ set(r)) >= 2 for r in recipes):
                break
        else:
            raise RuntimeError(f"cannot find {count} distinct recipes from {n_ingredients} ingredients")
        recipes.append(recipe)
        used.update(recipe)
    return recipes


def write_synthfood(root: Path, menu: list[Dish], per_dish: int, size: int, seed: int, n_test: int,
                    n_val: int = 0) -> None:
    """Images, masks, nutrition and list files of every dish under ``root``; the last ``n_val``
    training images of each dish listed in ``val.txt``."""
    food101, seg, n5k = root / "food101", root / "foodseg103" / "Images", root / "nutrition5k"
    for folder in [food101 / "meta", *(seg / kind / split for kind in ("img_dir", "ann_dir")
                                        for split in ("train", "test"))]:
        folder.mkdir(parents=True)
    lists: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    plates: list[tuple[str, str, dict[int, float]]] = []
    validation: list[str] = []
    for p, dish in enumerate(menu):
        (food101 / "images" / dish.name).mkdir(parents=True)
        for j in range(per_dish):
            index = p * per_dish + j
            image_id, split = FIRST_ID + index, "test" if j >= per_dish - n_test else "train"
            # Seeded per image, so no image depends on the ones drawn before it.
            image, mask = draw_plate(dish, size, np.random.default_rng((seed, index)))
            jpg = food101 / "images" / dish.name / f"{image_id}.jpg"
            Image.fromarray(image).save(jpg, "JPEG", quality=QUALITY)
            shutil.copyfile(jpg, seg / "img_dir" / split / f"{image_id}.jpg")
            Image.fromarray(mask).save(seg / "ann_dir" / split / f"{image_id}.png")
            overhead = n5k / "imagery" / "realsense_overhead" / f"dish_{image_id}"
            overhead.mkdir(parents=True)
            Image.fromarray(image).save(overhead / "rgb.png")
            lists[split].setdefault(dish.name, []).append(f"{dish.name}/{image_id}")
            if per_dish - n_test - n_val <= j < per_dish - n_test:
                validation.append(f"{dish.name}/{image_id}")
            plates.append((f"dish_{image_id}", split, plate_grams(mask)))
    write_lists(food101 / "meta", menu, lists)
    (root / "val.txt").write_text("".join(f"{key}\n" for key in validation))
    names = [ingredient.name for ingredient in INGREDIENTS[:ingredient_count(len(menu))]]
    (root / "foodseg103" / "category_id.txt").write_text(
        "".join(f"{i}\t{name}\n" for i, name in enumerate(["background", *names])))
    for split in ("train", "test"):
        write_instance_json(root / "foodseg103", split, names)
    (root / "taxonomy.csv").write_text("dish,category,cuisine,ingredients\n" + "".join(
        f"{d.name},{d.category.name},{d.cuisine.name},{';'.join(names[i - 1] for i in d.ingredients)}\n"
        for d in menu))
    write_nutrition5k(n5k, plates, len(names))


def write_nutrition5k(root: Path, plates: list[tuple[str, str, dict[int, float]]], n_ingredients: int) -> None:
    """Nutrition5k's metadata and split lists (images are written by the caller): one dish row
    per plate, no header, the five totals then 7 fields per ingredient, as the release has them."""
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "dish_ids" / "splits").mkdir(parents=True, exist_ok=True)
    rows = []
    for dish_id, _, grams in plates:
        parts = [nutrients(k, g) for k, g in grams.items()]
        totals = [sum(p[i] for p in parts) for i in range(4)]
        fields = [dish_id, f"{totals[0]:.6f}", f"{sum(grams.values()):.6f}", *(f"{t:.6f}" for t in totals[1:])]
        for (k, g), (kcal, fat, carb, protein) in zip(grams.items(), parts):
            fields += [f"ingr_{k:010d}", INGREDIENTS[k - 1].name, f"{g:.6f}", f"{kcal:.6f}", f"{fat:.6f}",
                       f"{carb:.6f}", f"{protein:.6f}"]
        rows.append(",".join(fields))
    (root / "metadata" / "dish_metadata_cafe1.csv").write_text("".join(f"{r}\n" for r in rows))
    (root / "metadata" / "ingredients_metadata.csv").write_text("ingr,id,cal/g,fat(g),carb(g),protein(g)\n" + "".join(
        f"{i.name},{k},{i.kcal},{i.fat},{i.carb},{i.protein}\n"
        for k, i in enumerate(INGREDIENTS[:n_ingredients], start=1)))
    for split in ("train", "test"):
        (root / "dish_ids" / "splits" / f"rgb_{split}_ids.txt").write_text(
            "".join(f"{d}\n" for d, s, _ in plates if s == split))


def nutrients(ingredient_id: int, grams: float) -> tuple[float, float, float, float]:
    """(kcal, fat g, carb g, protein g) of ``grams`` of an ingredient."""
    i = INGREDIENTS[ingredient_id - 1]
    return grams * i.kcal, grams * i.fat, grams * i.carb, grams * i.protein


def write_lists(meta: Path, menu: list[Dish], lists: dict[str, dict[str, list[str]]]) -> None:
    """Food-101's meta/: classes, labels and the split lists as .txt and .json."""
    (meta / "classes.txt").write_text("".join(f"{d.name}\n" for d in menu))
    (meta / "labels.txt").write_text("".join(f"{d.name.replace('_', ' ').capitalize()}\n" for d in menu))
    for split, per_dish in lists.items():
        (meta / f"{split}.txt").write_text("".join(f"{key}\n" for keys in per_dish.values() for key in keys))
        (meta / f"{split}.json").write_text(json.dumps(per_dish))


class Region(NamedTuple):
    """Pixels of one rotated shape within its bounding box, in the shape's own coordinates."""
    box: tuple[slice, slice]
    inside: np.ndarray  # bool, box-sized
    u: np.ndarray       # along the shape's first axis, pixels
    v: np.ndarray
    rho: np.ndarray     # elliptic radius: 1 on the boundary of the inscribed ellipse


def region(shape: str, centre: tuple[float, float], axes: tuple[float, float], angle: float, size: int,
           rng: np.random.Generator) -> Region | None:
    """The rotated ``shape`` (semi-axes ``axes``) clipped to the image; None when wholly outside."""
    (cx, cy), (a, b) = centre, axes
    reach = 1.5 * max(a, b)
    y0, y1 = max(0, int(cy - reach)), min(size, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(size, int(cx + reach) + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = (xx - cx) * cos + (yy - cy) * sin, (yy - cy) * cos - (xx - cx) * sin
    rho = np.hypot(u / a, v / b)
    if shape == "rectangle":
        inside = (np.abs(u) <= a) & (np.abs(v) <= b)
    elif shape == "blob":
        phi, phase = np.arctan2(v / b, u / a), rng.uniform(0, 2 * math.pi, 2)
        inside = rho <= 1 + 0.22 * np.sin(3 * phi + phase[0]) + 0.12 * np.sin(5 * phi + phase[1])
    else:
        inside = rho <= 1
    return Region((slice(y0, y1), slice(x0, x1)), inside, u, v, rho)


def paint(image: np.ndarray, where: Region | None, colour: np.ndarray, mask: np.ndarray | None = None,
          label: int = 0) -> None:
    """Cover the region with ``colour`` (RGB or per-pixel) and, given a mask, with ``label``."""
    if where is None:
        return
    patch = image[where.box]
    patch[where.inside] = np.broadcast_to(colour, patch.shape)[where.inside]
    if mask is not None:
        mask[where.box][where.inside] = label


def draw_plate(dish: Dish, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One photo of ``dish``: RGB uint8 image and its uint8 ingredient mask.

    The portion varies: 3-8 pieces of the main ingredient, 2-5 of each other one, 1-3 of each
    extra that is on this plate, all scaled by one per-plate size factor."""
    image = draw_table(size, rng)
    mask = np.zeros((size, size), np.uint8)
    centre, axes, angle = draw_vessel(image, dish, size, rng)
    extras = [k for k in dish.extras if rng.random() < EXTRA_CHANCE]
    counts = [rng.integers(3, 9) if n == 0 else rng.integers(2, 6) for n in range(len(dish.ingredients))]
    counts += [rng.integers(1, 4) for _ in extras]
    portion = rng.uniform(0.8, 1.25)
    pieces = rng.permutation(np.repeat([*dish.ingredients, *extras], counts))  # mixed: any piece may cover any other
    for label in pieces:
        ingredient = INGREDIENTS[label - 1]
        # uniform over the ellipse that fits in the vessel
        r, t = math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        du, dv = r * axes[0] * math.cos(t), r * axes[1] * math.sin(t)
        at = (centre[0] + du * math.cos(angle) - dv * math.sin(angle),
              centre[1] + du * math.sin(angle) + dv * math.cos(angle))
        a = axes[0] * portion * rng.uniform(0.18, 0.32)
        b = a if ingredient.shape == "circle" else a * rng.uniform(0.45, 0.85)
        where = region(ingredient.shape, at, (a, b), rng.uniform(0, math.pi), size, rng)
        if where is not None:
            paint(image, where, piece_colours(ingredient, where, a, rng), mask, int(label))
    if rng.random() < OCCLUSION:
        draw_utensil(image, mask, centre, axes[0], size, rng)
    return finish(image, size, rng), mask


def plate_grams(mask: np.ndarray) -> dict[int, float]:
    """Grams of each ingredient id on the plate, from its visible pixels (``REFERENCE_SIDE`` scale)."""
    counts = np.bincount(mask.ravel(), minlength=len(INGREDIENTS) + 1)
    per_pixel_area = (REFERENCE_SIDE / mask.shape[0]) * (REFERENCE_SIDE / mask.shape[1])
    return {int(k): float(counts[k] * per_pixel_area * INGREDIENTS[k - 1].grams_per_pixel)
            for k in np.flatnonzero(counts[1:]) + 1}


def draw_table(size: int, rng: np.random.Generator) -> np.ndarray:
    """Float RGB background: a table colour with blotches and wood-like grain."""
    base = np.array(TABLES[rng.integers(len(TABLES))], np.float32) + rng.normal(0, 12, 3)
    blotches = smooth_noise(size, 5, rng)
    rows = np.arange(size, dtype=np.float32)[:, None]
    grain = np.sin(2 * math.pi * rows / rng.uniform(6, 20) + 2 * blotches) * rng.uniform(0, 0.08)
    return base * (1 + 0.1 * blotches + grain)[..., None]


def smooth_noise(size: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-scale noise that varies over ~size/cells pixels."""
    coarse = Image.fromarray(rng.normal(0, 1, (cells, cells)).astype(np.float32))
    return np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC))


def draw_vessel(image: np.ndarray, dish: Dish, size: int, rng: np.random.Generator):
    """Rim (cuisine colour) and inside (category colour) of the dish's vessel.

    Returns the centre, semi-axes and angle of the ellipse where food may be placed.
    """
    shape, radius = dish.category.vessel, size * rng.uniform(0.34, 0.44)
    centre = tuple(size * rng.uniform(0.42, 0.58, 2))
    axes = (radius, radius * (rng.uniform(0.9, 1.0) if shape == "circle" else rng.uniform(0.68, 0.82)))
    angle = 0.0 if shape == "circle" else rng.uniform(-0.4, 0.4)
    rim = np.array(dish.cuisine.rim, np.float32) + rng.normal(0, 6, 3)
    paint(image, region(shape, centre, axes, angle, size, rng), rim)
    inner = region(shape, centre, (0.86 * axes[0], 0.86 * axes[1]), angle, size, rng)
    fill = np.array(dish.category.rgb, np.float32) + rng.normal(0, 6, 3)
    paint(image, inner, fill * (1 - 0.12 * np.clip(inner.rho, 0, 1) ** 2)[..., None])
    return centre, (0.72 * axes[0], 0.72 * axes[1]), angle


def piece_colours(ingredient: Ingredient, where: Region, a: float, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel colours of one piece: jittered base colour, the ingredient's texture, rounded shading."""
    base = np.array(ingredient.rgb, np.float32) * rng.uniform(0.9, 1.1) + rng.normal(0, 8, 3)
    dark = base.mean() < 80
    accent = base * 0.5 + 110 if dark else base * 0.6  # the pattern must show on dark pieces too
    colour = np.empty((*where.inside.shape, 3), np.float32)
    colour[:] = base
    if ingredient.texture == "stripes":
        colour[np.sin(2 * math.pi * where.u / max(3.0, 0.55 * a)) > 0.3] = accent
    elif ingredient.texture == "dots":
        p = max(4.0, 0.6 * a)
        colour[(where.u % p - p / 2) ** 2 + (where.v % p - p / 2) ** 2 < (0.28 * p) ** 2] = accent
    elif ingredient.texture == "noise":
        colour *= 1 + rng.normal(0, 0.15, where.inside.shape).astype(np.float32)[..., None]
    return colour * (1 - 0.22 * np.clip(where.rho, 0, 1) ** 2)[..., None]


def draw_utensil(image: np.ndarray, mask: np.ndarray, centre, radius: float, size: int,
                 rng: np.random.Generator) -> None:
    """A knife or fork handle across the plate edge: it hides food, which the mask must show."""
    t = rng.uniform(0, 2 * math.pi)
    at = (centre[0] + radius * math.cos(t), centre[1] + radius * math.sin(t))
    axes = (size * rng.uniform(0.3, 0.45), size * rng.uniform(0.02, 0.035))
    where = region("rectangle", at, axes, t + rng.uniform(1.2, 1.9), size, rng)
    if where is None:
        return
    paint(image, where, np.float32(rng.uniform(170, 215)) * (1 - 0.3 * np.abs(where.v) / axes[1])[..., None],
          mask, 0)


def finish(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Uneven light and sensor noise, then uint8."""
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    t = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0, 0.3) * (ramp[None, :] * math.cos(t) + ramp[:, None] * math.sin(t))
    noisy = image * light[..., None] + rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)
