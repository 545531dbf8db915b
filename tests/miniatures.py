"""Format-exact miniatures of the real data sets (a few classes, tiny JPEGs), built in seconds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

FOOD101_CLASSES = ("apple_pie", "baklava", "pizza")
FOODX251_CLASSES = ("macaron", "beignet", "cruller")


def write_jpeg(path: Path, size: tuple[int, int] = (48, 36), seed: int = 0) -> Path:
    """A ``size`` = (width, height) JPEG of noise: noise keeps most bytes in the scan data."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return path


def break_header(path: Path) -> None:
    """Cut a JPEG inside its headers: PIL cannot even identify/verify it."""
    path.write_bytes(path.read_bytes()[:64])


def truncate_scan(path: Path) -> None:
    """Cut a JPEG inside its scan data: it opens and verifies, only a full decode fails."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])


def make_food101(root: Path, classes: tuple[str, ...] = FOOD101_CLASSES, train_per_class: int = 3,
                 test_per_class: int = 2, size: tuple[int, int] = (48, 36)) -> Path:
    """``root/images/<class>/<id>.jpg`` plus ``meta/`` (classes, labels, train/test .txt and .json)."""
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    lists: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for c, name in enumerate(classes):
        keys = [f"{name}/{100000 + 1000 * c + i}" for i in range(train_per_class + test_per_class)]
        for i, key in enumerate(keys):
            write_jpeg(root / "images" / f"{key}.jpg", size, seed=100 * c + i)
        lists["train"][name], lists["test"][name] = keys[:train_per_class], keys[train_per_class:]
    (meta / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    (meta / "labels.txt").write_text("".join(f"{name.replace('_', ' ').capitalize()}\n" for name in classes))
    for split, per_class in lists.items():
        (meta / f"{split}.txt").write_text("".join(f"{k}\n" for keys in per_class.values() for k in keys))
        (meta / f"{split}.json").write_text(json.dumps(per_class))
    return root


def make_foodx251(root: Path, classes: tuple[str, ...] = FOODX251_CLASSES, train_per_class: int = 3,
                  val_per_class: int = 2, test_images: int = 3, release: str = "kaggle",
                  size: tuple[int, int] = (48, 36)) -> Path:
    """class_list.txt, label csvs and ``{train,val,test}_set/``.

    ``release="kaggle"``: ``{split}_labels.csv`` with header ``img_name,label``;
    ``release="github"``: ``annot.tar``'s ``{split}_info.csv`` without header, plus test_info.csv.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_list.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(classes)))
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        labels = [i % len(classes) for i in range(per_class * len(classes))]  # classes interleaved
        rows = [(f"{split}_{k:05d}.jpg", label) for k, label in enumerate(labels)]
        for k, (name, _) in enumerate(rows):
            write_jpeg(root / f"{split}_set" / name, size, seed=k)
        write_labels(root, split, rows, release)
    tests = [f"test_{k:05d}.jpg" for k in range(test_images)]
    for k, name in enumerate(tests):
        write_jpeg(root / "test_set" / name, size, seed=1000 + k)
    if release == "github":
        (root / "test_info.csv").write_text("".join(f"{name}\n" for name in tests))
    return root


def write_labels(root: Path, split: str, rows: list[tuple[str, int]], release: str) -> None:
    lines = "".join(f"{name},{label}\n" for name, label in rows)
    if release == "kaggle":
        (root / f"{split}_labels.csv").write_text("img_name,label\n" + lines)
    elif release == "github":
        (root / f"{split}_info.csv").write_text(lines)
    else:
        raise ValueError(f"release must be 'kaggle' or 'github', got {release!r}")


def make_coco(root: Path, categories: list[dict], annotations: list[dict], images: int = 2,
              size: tuple[int, int] = (20, 16)) -> Path:
    """One split of the AIcrowd Food Recognition Benchmark layout: ``root/images/<id:06d>.jpg`` and
    ``root/annotations.json`` (COCO instances; ``annotations`` refer to image ids 1..images)."""
    infos = [{"id": i, "file_name": f"{i:06d}.jpg", "height": size[1], "width": size[0]}
             for i in range(1, images + 1)]
    for k, info in enumerate(infos):
        write_jpeg(root / "images" / info["file_name"], size, seed=k)
    data = {"images": infos, "annotations": annotations, "categories": categories}
    (root / "annotations.json").write_text(json.dumps(data))
    return root


# Nutrition5k dish rows (dish_metadata_cafe*.csv): one of each quirk the reader reports.
N5K_ROWS_CAFE1 = [
    # totals match the ingredients' grams (150 + 50)
    "dish_1000000001,277.5,200.0,2.25,42.0,19.55,ingr_0000000001,rice,150.0,195.0,0.45,42.0,4.05,"
    "ingr_0000000002,chicken,50.0,82.5,1.8,0.0,15.5",
    "dish_1000000002,0.0,0.0,0.0,0.0,0.0,ingr_0000000003,deprecated,0.0,0.0,0.0,0.0,0.0",  # all-zero totals
    "dish_1000000003,130.0,90.0,0.3,28.0,2.7,ingr_0000000001,rice,60.0,78.0,0.18,16.8,1.62",  # 90 g vs 60 g
    "dish_1000000004,65.0,50.0,0.15,14.0,1.35,ingr_0000000001,rice,50.0,65.0,0.15,14.0,1.35",  # no image
]
N5K_ROWS_CAFE2 = [
    "dish_1000000005,65.0,50.0,0.15,14.0,1.35,1,ingr_0000000001,rice,50.0,65.0,0.15,14.0,1.35",  # README's num_ingrs
    "dish_1000000006,82.5,50.0,1.8,0.0,15.5,ingr_0000000002,chicken,50.0,82.5,1.8,0.0,15.5",  # in no split
]


def make_nutrition5k(root: Path, cafe1=N5K_ROWS_CAFE1, cafe2=N5K_ROWS_CAFE2,
                     train="1000000001\n1000000002\n1000000004\n") -> Path:
    """The Nutrition5k release (``foodmtl/data/sets/nutrition5k.py``) with one of each quirk it reports."""
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "dish_metadata_cafe1.csv").write_text("".join(f"{r}\n" for r in cafe1))
    (root / "metadata" / "dish_metadata_cafe2.csv").write_text("".join(f"{r}\n" for r in cafe2))
    (root / "metadata" / "ingredients_metadata.csv").write_text(
        "ingr,id,cal/g,fat(g),carb(g),protein(g)\nrice,1,1.3,0.003,0.28,0.027\n"
        "chicken,2,1.65,0.036,0.0,0.31\ndeprecated,3,0,0,0,0\n")
    splits = root / "dish_ids" / "splits"
    splits.mkdir(parents=True)
    (splits / "rgb_train_ids.txt").write_text("".join(f"dish_{d}\n" for d in train.split()))
    (splits / "rgb_test_ids.txt").write_text("dish_1000000003\ndish_1000000005\n")
    (splits / "depth_train_ids.txt").write_text("dish_1000000001\n")
    (splits / "depth_test_ids.txt").write_text("dish_1000000003\n")
    for d in ("1000000001", "1000000002", "1000000003", "1000000005", "1000000006"):
        folder = root / "imagery" / "realsense_overhead" / f"dish_{d}"
        folder.mkdir(parents=True)
        Image.fromarray(np.full((8, 10, 3), 128, np.uint8)).save(folder / "rgb.png")
        Image.fromarray(np.zeros((8, 10), np.uint16)).save(folder / "depth_raw.png")
    return root
