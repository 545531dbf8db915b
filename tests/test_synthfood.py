"""SynthFood generator: layout, splits, masks, determinism, CLI and a cheap learnability check."""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from foodmtl.data.sets.food101 import read_food101
from foodmtl.data.sets.foodseg103 import read_foodseg103
from foodmtl.data.sets.nutrition5k import read_nutrition5k
from foodmtl.synthfood.generate import INGREDIENTS, REFERENCE_SIDE, design_dishes, generate_synthfood
from foodmtl.data.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[1]
TINY = {"dishes": 4, "per_dish": 6, "size": 48, "seed": 0}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate_synthfood(tmp_path_factory.mktemp("sf") / "synthfood", **TINY)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def ingredient_ids(root: Path) -> dict[str, int]:
    return {line.split("\t")[1]: int(line.split("\t")[0]) for line in lines(root / "foodseg103" / "category_id.txt")}


def samples(root: Path) -> list[tuple[str, str, str]]:
    """(dish, image id, split) of every listed image."""
    return [(*key.split("/"), split) for split in ("train", "test")
            for key in lines(root / "food101" / "meta" / f"{split}.txt")]


def dish_ingredients(root: Path) -> dict[str, set[int]]:
    ids = ingredient_ids(root)
    taxonomy = load_taxonomy(root / "taxonomy.csv")
    return {row.dish: {ids[name] for name in row.ingredients} for row in taxonomy.itertuples()}


def dish_extras(root: Path) -> dict[str, set[int]]:
    return {d.name: set(d.extras) for d in design_dishes(TINY["dishes"], TINY["seed"])}


def read_mask(root: Path, image_id: str, split: str) -> np.ndarray:
    with Image.open(root / "foodseg103" / "Images" / "ann_dir" / split / f"{image_id}.png") as png:
        assert png.mode == "L"
        return np.asarray(png)


def test_layout_parses_with_the_project_readers(root):
    food = read_food101(root / "food101")
    assert len(food) == 24 and food.frame["split"].value_counts().to_dict() == {"train": 20, "test": 4}
    assert all(Path(p).is_file() for p in food.frame["image"])
    seg = read_foodseg103(root / "foodseg103")
    assert len(seg) == 24 and seg.vocab["segmentation"][0] == "background"
    assert {Path(p).stem for p in seg.frame["image"]} == {Path(p).stem for p in food.frame["image"]}
    classes = lines(root / "food101" / "meta" / "classes.txt")
    assert lines(root / "food101" / "meta" / "labels.txt") == [c.replace("_", " ").capitalize() for c in classes]
    assert json.loads((root / "synthfood.json").read_text()) == {**TINY, "test_fraction": 0.2, "val_fraction": 0.1,
                                                                   "version": 3}
    assert not list(root.parent.glob("*.tmp-*"))


def test_classes_sorted_and_splits_disjoint_complete_and_grouped(root):
    meta = root / "food101" / "meta"
    classes = lines(meta / "classes.txt")
    assert classes == sorted(classes) and len(set(classes)) == 4
    train, test = lines(meta / "train.txt"), lines(meta / "test.txt")
    assert not set(train) & set(test)
    on_disk = {f"{p.parent.name}/{p.stem}" for p in (root / "food101" / "images").glob("*/*.jpg")}
    assert set(train) | set(test) == on_disk and len(train) + len(test) == len(on_disk) == 24
    for split, keys in (("train", train), ("test", test)):
        assert sorted(keys, key=lambda k: classes.index(k.split("/")[0])) == keys  # grouped in classes.txt order
        as_json = json.loads((meta / f"{split}.json").read_text())
        assert list(as_json) == classes and [k for ks in as_json.values() for k in ks] == keys
    assert Counter(k.split("/")[0] for k in test) == {c: 1 for c in classes}  # round(6 * 0.2) per dish
    ids = [k.split("/")[1] for k in train + test]
    assert len(set(ids)) == len(ids) and all(i.isdigit() and len(i) >= 6 for i in ids)


def test_foodseg_images_are_the_food101_bytes_and_masks_fit(root):
    recipes, extras = dish_ingredients(root), dish_extras(root)
    for dish, image_id, split in samples(root):
        jpg = root / "food101" / "images" / dish / f"{image_id}.jpg"
        assert (root / "foodseg103" / "Images" / "img_dir" / split / f"{image_id}.jpg").read_bytes() == jpg.read_bytes()
        mask = read_mask(root, image_id, split)
        with Image.open(jpg) as image:
            assert mask.shape == (image.height, image.width) == (48, 48)
        assert set(np.unique(mask)) <= {0} | recipes[dish] | extras[dish], (dish, image_id)


def test_every_ingredient_of_the_dish_shows_in_most_masks(root):
    recipes = dish_ingredients(root)
    seen = Counter()
    for dish, image_id, split in samples(root):
        present = set(np.unique(read_mask(root, image_id, split)))
        seen.update((dish, k) for k in recipes[dish] if k in present)
    for dish, ids in recipes.items():
        for k in ids:
            assert seen[dish, k] >= 5, (dish, k, seen[dish, k])  # of 6 images


def test_masked_pixels_have_their_ingredient_colour(root):
    """Image and mask agree: a labelled region's mean colour is nearest that ingredient's own colour
    among those on the plate. Read from the lossless Nutrition5k copy: at 48 px, JPEG's 4:2:0 chroma
    subsampling bleeds neighbours into small pieces; the JPEG is checked to be the same picture."""
    recipes, right, total = dish_ingredients(root), 0, 0
    for dish, image_id, split in samples(root):
        png = root / "nutrition5k" / "imagery" / "realsense_overhead" / f"dish_{image_id}" / "rgb.png"
        with Image.open(png) as lossless, Image.open(root / "food101" / "images" / dish / f"{image_id}.jpg") as jpg:
            image = np.asarray(lossless.convert("RGB"), np.float32)
            assert np.corrcoef(np.asarray(jpg.convert("RGB"), np.float32).ravel(), image.ravel())[0, 1] > 0.9
        mask = read_mask(root, image_id, split)
        candidates = sorted(set(np.unique(mask)) - {0})  # the ingredients on this plate
        palette = np.array([INGREDIENTS[k - 1].rgb for k in candidates], np.float32)
        for k in candidates:
            if (mask == k).sum() >= 20:
                mean = image[mask == k].mean(0)
                right += candidates[int(np.abs(palette - mean).sum(1).argmin())] == k
                total += 1
    assert total >= 40 and right / total >= 0.9, (right, total)


def test_mask_follows_the_last_drawn_layer_including_utensils(monkeypatch):
    """With flat, exact ingredient colours, mask k <=> pixel has colour k (later pieces and utensils win)."""
    import foodmtl.synthfood.generate as synthfood

    monkeypatch.setattr(synthfood, "OCCLUSION", 1.0)
    monkeypatch.setattr(synthfood, "piece_colours", lambda ingredient, *_: np.array(ingredient.rgb, np.float32))
    monkeypatch.setattr(synthfood, "finish", lambda image, *_: np.clip(image, 0, 255).astype(np.uint8))
    for index, dish in enumerate(design_dishes(6, seed=0)):
        image, mask = synthfood.draw_plate(dish, 64, np.random.default_rng(index))
        assert mask.dtype == np.uint8 and mask.shape == image.shape[:2] == (64, 64)
        for k in dish.ingredients:
            painted = (image == INGREDIENTS[k - 1].rgb).all(-1)
            assert (mask == k).any() and painted[mask == k].all(), (dish.name, k)
            assert (mask[painted] == k).mean() > 0.99, (dish.name, k)


def test_taxonomy_matches_classes_and_category_ids(root):
    taxonomy = load_taxonomy(root / "taxonomy.csv")
    assert lines(root / "taxonomy.csv")[0] == "dish,category,cuisine,ingredients"
    assert taxonomy["dish"].tolist() == lines(root / "food101" / "meta" / "classes.txt")
    names = list(ingredient_ids(root))
    assert names[0] == "background" and list(ingredient_ids(root).values()) == list(range(len(names)))
    used = {name for row in taxonomy["ingredients"] for name in row}
    extras = {INGREDIENTS[k - 1].name for d in design_dishes(TINY["dishes"], TINY["seed"]) for k in d.extras}
    assert used <= set(names[1:])
    assert used | extras == set(names[1:])  # every segmentation class is on some plate
    assert taxonomy["category"].notna().all() and taxonomy["cuisine"].notna().all()


@pytest.mark.parametrize("dishes", [1, 3, 8, 12, 30, 101])
def test_menu_recipes_unique_and_labels_spread(dishes):
    menu = design_dishes(dishes, seed=3)
    assert [d.name for d in menu] == sorted({d.name for d in menu}) and len(menu) == dishes
    recipes = [frozenset(d.ingredients) for d in menu]
    assert all(2 <= len(r) <= 4 for r in recipes)
    assert all(len(a ^ b) >= 2 for i, a in enumerate(recipes) for b in recipes[i + 1:])
    if dishes >= 8:
        for field in ("category", "cuisine"):
            counts = Counter(getattr(d, field).name for d in menu)
            assert len(counts) >= 2 and min(counts.values()) >= 2, (field, counts)
        pairs = {(d.category, d.cuisine) for d in menu}  # neither label is a function of the other
        assert len(pairs) > max(len({d.category for d in menu}), len({d.cuisine for d in menu}))
    assert design_dishes(dishes, seed=3) == menu
    for a in menu:  # extras never make a plate of one dish look like a plate of another
        assert not set(a.extras) & set(a.ingredients) and len(a.extras) <= 2
        assert not any(synthfood_plates_can_match(a, b) for b in menu if b is not a), a.name


def synthfood_plates_can_match(a, b) -> bool:
    """Brute force over the extras each plate may hold."""
    from itertools import chain, combinations

    def plates(dish):
        subsets = chain.from_iterable(combinations(dish.extras, n) for n in range(len(dish.extras) + 1))
        return {frozenset(dish.ingredients) | frozenset(s) for s in subsets}
    return bool(plates(a) & plates(b))


def test_plates_vary_per_image_and_their_nutrition_follows_the_visible_pixels(root):
    """Per image: the Nutrition5k rows hold the visible ingredients, and grams = visible pixels x
    grams per pixel (48 px images: x (128/48)^2), calories etc. = grams x per-gram values."""
    n5k = read_nutrition5k(root / "nutrition5k")
    rows = {Path(p).parent.name.removeprefix("dish_"): r for p, r in zip(n5k.frame["image"], n5k.frame.itertuples())}
    assert len(rows) == len(samples(root)) and not n5k.notes
    ids = ingredient_ids(root)
    sets, masses = Counter(), []
    for dish, image_id, split in samples(root):
        mask, row = read_mask(root, image_id, split), rows[image_id]
        assert row.split == split
        present = {INGREDIENTS[k - 1].name for k in np.unique(mask) if k}
        assert set(row.ingredients) == present
        scale = (REFERENCE_SIDE / 48) ** 2
        grams = {k: (mask == k).sum() * scale * INGREDIENTS[k - 1].grams_per_pixel for k in np.unique(mask) if k}
        assert row.mass == pytest.approx(sum(grams.values()), rel=1e-5)
        assert row.calories == pytest.approx(sum(g * INGREDIENTS[k - 1].kcal for k, g in grams.items()), rel=1e-5)
        assert row.protein == pytest.approx(sum(g * INGREDIENTS[k - 1].protein for k, g in grams.items()), rel=1e-4)
        sets[dish, frozenset(row.ingredients)] += 1
        masses.append(row.mass)
        with Image.open(root / "nutrition5k" / "imagery" / "realsense_overhead" / f"dish_{image_id}" / "rgb.png") as png:
            with Image.open(root / "food101" / "images" / dish / f"{image_id}.jpg") as jpg:
                assert png.format == "PNG" and png.size == jpg.size
    assert len(sets) > len({d for d, _ in sets})  # some dish has plates with different ingredient sets
    assert np.std(masses) / np.mean(masses) > 0.2  # portions vary
    assert set(ids) >= {"background"}


def files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern))}


def test_same_seed_same_bytes_other_seed_other_data(root, tmp_path):
    again = generate_synthfood(tmp_path / "again", **TINY)
    other = generate_synthfood(tmp_path / "other", **{**TINY, "seed": 1})
    for pattern in ("foodseg103/Images/ann_dir/*/*.png", "food101/images/*/*.jpg", "food101/meta/*",
                    "taxonomy.csv", "foodseg103/category_id.txt", "nutrition5k/metadata/*", "nutrition5k/dish_ids/*/*"):
        assert files(again, pattern) == files(root, pattern) != {}, pattern
    masks, other_masks = files(root, "**/ann_dir/*/*.png"), files(other, "**/ann_dir/*/*.png")
    assert masks.keys() == other_masks.keys()  # ids are positions, so the same; the pixels are not
    assert sum(masks[k] != other_masks[k] for k in masks) == len(masks)
    assert (other / "taxonomy.csv").read_text() != (root / "taxonomy.csv").read_text()


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "sf"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=str(out)):
        generate_synthfood(out, **TINY)
    assert (out / "keep.txt").exists()
    generate_synthfood(out, **TINY, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "synthfood.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sf"]


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    import foodmtl.synthfood.generate as synthfood

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(synthfood, "write_lists", broken)
    with pytest.raises(OSError, match="disk full"):
        generate_synthfood(tmp_path / "sf", **TINY)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [{"dishes": 0}, {"per_dish": 1}, {"size": 16}, {"seed": -1},
                                 {"test_fraction": 0.0}, {"test_fraction": 1.0}])
def test_bad_arguments_are_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        generate_synthfood(tmp_path / "sf", **{**TINY, **bad})
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_the_layout(tmp_path):
    env = {**os.environ, "PYTHONPATH": ""}  # the script must find the package from a bare checkout
    out = tmp_path / "cli"
    command = [sys.executable, str(REPO / "data_prep" / "make_synthfood.py"), "--out", str(out),
               "--dishes", "3", "--per-dish", "4", "--size", "40", "--seed", "5"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout and len(proc.stdout.strip().splitlines()) == 1
    assert json.loads((out / "synthfood.json").read_text())["seed"] == 5
    assert len(lines(out / "food101" / "meta" / "classes.txt")) == 3
    assert len(list((out / "foodseg103" / "Images" / "ann_dir").glob("*/*.png"))) == 12
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and again.stderr.startswith("error: ") and again.stderr.count("\n") == 1
    assert "already exists" in again.stderr


def test_dishes_are_learnable_from_food_colours(tmp_path):
    """Nearest class centroid of colour histograms over food pixels beats chance (1/6) by far."""
    root = generate_synthfood(tmp_path / "sf", dishes=6, per_dish=20, size=48, seed=0)
    features, labels, splits = [], [], []
    for dish, image_id, split in samples(root):
        with Image.open(root / "food101" / "images" / dish / f"{image_id}.jpg") as jpg:
            rgb = np.asarray(jpg.convert("RGB")) // 64
        codes = (rgb[..., 0] * 16 + rgb[..., 1] * 4 + rgb[..., 2])[read_mask(root, image_id, split) > 0]
        histogram = np.bincount(codes, minlength=64).astype(np.float64)
        features.append(histogram / max(1.0, histogram.sum()))
        labels.append(dish)
        splits.append(split)
    x, y, train = np.array(features), np.array(labels), np.array(splits) == "train"
    classes = sorted(set(labels))
    centroids = np.stack([x[train & (y == c)].mean(0) for c in classes])
    predicted = np.array(classes)[np.abs(x[~train, None] - centroids[None]).sum(-1).argmin(1)]
    assert (predicted == y[~train]).mean() > 3 / len(classes)
