"""COCO-format instance annotations rasterised into FoodSeg103-style semantic masks.

For food sets published as COCO instance json: the AIcrowd Food Recognition Benchmark (498
categories in its 2022 release, the ``num_classes=498`` of the benchmark's starter kit,
github.com/AIcrowd/food-recognition-benchmark-starter-kit ``predict_detectron2.py``; category ids
non-contiguous, up to 101xxx, ``utils/v2.1_breaking_class_mapping.json``), UEC-FoodPix converted,
... One ``out_dir`` per split receives ``<image stem>.png`` and ``category_id.txt`` (FoodSeg103
format). Class ids are contiguous: 0 is background, then the COCO categories in ascending COCO id
order. Masks are 8-bit while the classes fit (at most 254 categories), else 16-bit, with the
ignore value of their type (``foodmtl.data.masks``: 255 or 65535).

Rasterising (pycocotools ``annToMask``: polygons, compressed and uncompressed RLE):
- non-crowd instances are painted largest (pixel count) first, so a small item lying
  on a larger one (a herb on rice) keeps its pixels instead of being painted over
  (equal sizes: annotation order);
- pixels of crowd annotations are then set to the ignore value: their class is
  uncertain, so they are ignored rather than guessed;
- every other pixel is background (0).

A shape pycocotools cannot draw (a polygon of fewer than 3 points or an odd number of
coordinates, an RLE that does not cover its image exactly, no segmentation at all: see
``coco_shapes.py``) is skipped with a warning naming the image and annotation, and listed in the
table's ``notes`` and in ``out_dir/skipped_shapes.txt``, so that re-reading the masks (``load``)
counts them in its notes too. A file that is not COCO instance json (malformed JSON, a missing key or id, an
id used twice, an unknown category) is a DataError, raised before anything is written.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pycocotools.coco import COCO

from foodmtl.data.formats.coco_shapes import rasterise
from foodmtl.errors import DataError
from foodmtl.data.sets.foodseg103 import IMAGE_SUFFIXES, read_category_ids
from foodmtl.data.masks import mask_dtype, mask_ignore_value, write_mask
from foodmtl.data.paths import read_json, require_path
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions
from foodmtl.data.table import concat_tables

SOURCE = "coco"
BACKGROUND = "background"
CATEGORY_FILE = "category_id.txt"
SKIPPED_FILE = "skipped_shapes.txt"  # one line per shape coco_to_masks could not draw
SECTIONS = ("images", "annotations", "categories")
REQUIRED = {"images": ("id", "file_name", "height", "width"), "categories": ("id", "name"),
            "annotations": ("id", "image_id", "category_id")}


def coco_to_masks(annotation_file: str | Path, image_dir: str | Path, out_dir: str | Path,
                  split: str) -> SampleTable:
    """Write one mask per listed image found in ``image_dir``; rows are those images, ``notes``
    the skipped shapes."""
    annotation_file, image_dir, out_dir = (Path(p).expanduser().resolve()
                                           for p in (annotation_file, image_dir, out_dir))
    coco = load_coco(annotation_file)
    require_path(image_dir, "COCO image folder", "pass the folder the json's file_name entries are in")
    classes, class_of = category_mapping(coco, annotation_file)
    images = present_images(coco, image_dir, annotation_file)
    dtype = mask_dtype(len(classes))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_categories(out_dir / CATEGORY_FILE, classes)
    masks, skipped = [], []
    for info in images:
        mask_path = out_dir / f"{Path(info['file_name']).stem}.png"
        mask, problems = semantic_mask(coco, info, class_of, dtype)
        write_mask(mask_path, mask)
        masks.append(str(mask_path))
        for problem in problems:
            warnings.warn(f"COCO: {problem}", stacklevel=2)
        skipped += problems
    (out_dir / SKIPPED_FILE).write_text("".join(f"{line}\n" for line in skipped))
    frame = pd.DataFrame({"image": [str(image_dir / i["file_name"]) for i in images], "split": split,
                          "source": SOURCE, "mask": masks})
    return SampleTable(empty_columns(frame), {"segmentation": classes}, skipped)


def read_coco_masks(out_dir: str | Path, image_dir: str | Path, split: str) -> SampleTable:
    """Re-read a folder written by ``coco_to_masks``: each mask paired with the image of its stem."""
    out_dir, image_dir = Path(out_dir).expanduser().resolve(), Path(image_dir).expanduser().resolve()
    require_path(out_dir, "COCO masks", f"python data_prep/coco_to_masks.py --ann ANNOTATIONS.json "
                 f"--images {image_dir} --out {out_dir} --split {split}")
    require_path(image_dir, "COCO image folder", "pass the folder the json's file_name entries are in")
    if not (out_dir / CATEGORY_FILE).is_file():
        raise FileNotFoundError(f"{out_dir / CATEGORY_FILE} not found: is {out_dir} the output of "
                                "data_prep/coco_to_masks.py?")
    classes = read_category_ids(out_dir / CATEGORY_FILE)
    by_stem = images_by_stem(image_dir)
    masks = sorted(out_dir.glob("*.png"))
    kept = [m for m in masks if m.stem in by_stem]
    if len(kept) < len(masks):
        warnings.warn(f"COCO masks: {len(masks) - len(kept)} of {len(masks)} masks in {out_dir} have no "
                      f"image in {image_dir} and are dropped", stacklevel=2)
    frame = pd.DataFrame({"image": [str(by_stem[m.stem]) for m in kept], "split": split,
                          "source": SOURCE, "mask": [str(m) for m in kept]})
    return SampleTable(empty_columns(frame), {"segmentation": classes}, skipped_note(out_dir))


def skipped_note(out_dir: Path) -> list[str]:
    """The count of shapes ``coco_to_masks`` skipped when it wrote ``out_dir`` (none listed: no note)."""
    listed = out_dir / SKIPPED_FILE
    count = len(listed.read_text().splitlines()) if listed.is_file() else 0
    return [f"{out_dir}: {count} degenerate shape(s) skipped when its masks were drawn (listed in "
            f"{SKIPPED_FILE})"] if count else []


def load_coco(annotation_file: Path) -> COCO:
    if not annotation_file.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {annotation_file}")
    dataset = read_json(annotation_file)
    check_coco(dataset, annotation_file)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def check_coco(dataset: object, path: Path) -> None:
    """DataError where pycocotools would crash (a missing key) or silently keep one of two
    entries (an id used twice), and for annotations of unknown categories."""
    missing = [key for key in SECTIONS if not isinstance(dataset, dict) or not isinstance(dataset.get(key), list)]
    if missing:
        raise DataError(path, f"not COCO instance annotations: no {', '.join(missing)} list")
    ids = {section: unique_ids(dataset[section], section, keys, path) for section, keys in REQUIRED.items()}
    for image in dataset["images"]:
        if not all(type(image[key]) is int and image[key] > 0 for key in ("height", "width")):
            raise DataError(path, f"image {image['id']} has height {image['height']!r}, width {image['width']!r}; "
                                  "expected positive integers")
        if not isinstance(image["file_name"], str) or not image["file_name"]:
            raise DataError(path, f"image {image['id']} has file_name {image['file_name']!r}; expected a file name")
    for ann in dataset["annotations"]:
        if ann["category_id"] not in ids["categories"]:
            raise DataError(path, f"annotation {ann['id']} has category_id {ann['category_id']}, which is not in "
                                  "the categories")


def unique_ids(entries: list, section: str, keys: tuple[str, ...], path: Path) -> set[int]:
    """The ids of one section; every entry must hold ``keys``, integer ``*id`` values, a new id."""
    ids: set[int] = set()
    for k, entry in enumerate(entries):
        absent = [key for key in keys if not isinstance(entry, dict) or key not in entry]
        if absent:
            raise DataError(path, f"{section}[{k}] has no {', '.join(absent)}")
        wrong = [key for key in keys if key.endswith("id") and type(entry[key]) is not int]
        if wrong:
            raise DataError(path, f"{section}[{k}] has {wrong[0]} {entry[wrong[0]]!r}; expected an integer")
        if entry["id"] in ids:
            raise DataError(path, f"{section}[{k}]: id {entry['id']} is used twice in {section}")
        ids.add(entry["id"])
    return ids


def category_mapping(coco: COCO, annotation_file: Path) -> tuple[list[str], dict[int, int]]:
    """Class names (background first) and COCO category id -> contiguous class id."""
    cat_ids = sorted(coco.cats)
    try:
        mask_dtype(len(cat_ids) + 1)
    except ValueError as exc:
        raise DataError(annotation_file, f"{len(cat_ids)} categories: {exc}") from None
    # Whitespace runs become one space: category_id.txt is one '<id>\t<name>' per line.
    names = [BACKGROUND] + [" ".join(str(coco.cats[c]["name"]).split()) for c in cat_ids]
    if "" in names:
        raise DataError(annotation_file, f"category {cat_ids[names.index('') - 1]} has an empty name")
    return names, {c: i for i, c in enumerate(cat_ids, start=1)}


def present_images(coco: COCO, image_dir: Path, annotation_file: Path) -> list[dict]:
    """The json's images (by id) whose file exists; missing ones are dropped with a warning."""
    images = [coco.imgs[i] for i in sorted(coco.imgs)]
    stems = pd.Series([Path(i["file_name"]).stem for i in images], dtype=object)
    if stems.duplicated().any():
        raise DataError(annotation_file, f"two images share the file stem '{stems[stems.duplicated()].iloc[0]}', "
                                         "so their masks would overwrite each other")
    missing = [i["file_name"] for i in images if not (image_dir / i["file_name"]).is_file()]
    if missing:
        warnings.warn(f"COCO: {len(missing)} of {len(images)} images of {annotation_file} are not in "
                      f"{image_dir} and are dropped (first: {missing[0]})", stacklevel=3)
    dropped = set(missing)
    return [i for i in images if i["file_name"] not in dropped]


def semantic_mask(coco: COCO, info: dict, class_of: dict[int, int],
                  dtype: np.dtype) -> tuple[np.ndarray, list[str]]:
    """(H, W) class ids for one image (see the module docstring for the painting order), and
    the shapes skipped, each naming image and annotation."""
    hw = (info["height"], info["width"])
    mask = np.zeros(hw, dtype)
    instances, crowds, skipped = [], [], []
    for ann in coco.imgToAnns[info["id"]]:
        pixels, problems = rasterise(coco, ann, hw)
        skipped += [f"image {info['id']} ({info['file_name']}), annotation {ann['id']}: {p}; skipped"
                    for p in problems]
        if pixels is not None:
            (crowds if ann.get("iscrowd", 0) else instances).append((pixels, class_of[ann["category_id"]]))
    for pixels, class_id in sorted(instances, key=lambda item: -int(item[0].sum())):
        mask[pixels] = class_id
    for pixels, _ in crowds:
        mask[pixels] = mask_ignore_value(dtype)
    return mask, skipped


def write_categories(path: Path, classes: list[str]) -> None:
    path.write_text("".join(f"{i}\t{name}\n" for i, name in enumerate(classes)))


def images_by_stem(image_dir: Path) -> dict[str, Path]:
    """Image files anywhere under ``image_dir`` by stem; a stem found twice is an error."""
    found: dict[str, Path] = {}
    for path in sorted(image_dir.rglob("*")):
        if not (path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()):
            continue
        if path.stem in found:
            raise DataError(image_dir, f"{found[path.stem]} and {path} share a stem; cannot tell which a mask "
                                       "belongs to")
        found[path.stem] = path
    return found


def load(root: str, options: LoadOptions) -> SampleTable:
    """COCO-format masks (e.g. the Food Recognition Benchmark, UEC-FoodPix converted):
    ``root/<split>/images/`` + ``root/<split>/annotations.json``, with masks converted once
    into ``root/<split>/masks/`` by data_prep/coco_to_masks.py."""
    return concat_tables([read_coco_masks(split / "masks", split / "images", split.name)
                          for split in split_folders(root, "images", "COCO data")])


def split_folders(root: str, marker: str, what: str) -> list[Path]:
    """The sub-folders of ``root`` that hold ``marker``, one per split; FileNotFoundError when none does."""
    splits = sorted(d for d in Path(root).glob("*") if (d / marker).exists())
    if not splits:
        raise FileNotFoundError(f"{what} not found: no {root}/<split>/{marker}")
    return splits
