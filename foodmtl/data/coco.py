"""COCO-format instance annotations rasterised into FoodSeg103-style semantic masks.

For food sets published as COCO instance json (AIcrowd Food Recognition Benchmark,
UEC-FoodPix converted, ...). One ``out_dir`` per split receives ``<image stem>.png``
(8-bit class ids) and ``category_id.txt`` (FoodSeg103 format). Class ids are
contiguous: 0 is background, then the COCO categories in ascending COCO id order.

Rasterising (pycocotools ``annToMask``: polygons, compressed and uncompressed RLE):
- non-crowd instances are painted largest (pixel count) first, so a small item lying
  on a larger one (a herb on rice) keeps its pixels instead of being painted over
  (equal sizes: annotation order);
- pixels of crowd annotations are then set to ``SEG_IGNORE`` (255): their class is
  uncertain, so they are ignored rather than guessed;
- every other pixel is background (0).
"""
from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from pycocotools.coco import COCO

from foodmtl.data.foodseg103 import IMAGE_SUFFIXES, read_category_ids
from foodmtl.data.paths import require_path
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.tasks import SEG_IGNORE

SOURCE = "coco"
BACKGROUND = "background"
CATEGORY_FILE = "category_id.txt"


def coco_to_masks(annotation_file: str | Path, image_dir: str | Path, out_dir: str | Path,
                  split: str) -> SampleTable:
    """Write one mask per listed image found in ``image_dir``; rows are those images."""
    annotation_file, image_dir, out_dir = (Path(p).expanduser().resolve()
                                           for p in (annotation_file, image_dir, out_dir))
    coco = load_coco(annotation_file)
    require_path(image_dir, "COCO image folder", "pass the folder the json's file_name entries are in")
    classes, class_of = category_mapping(coco, annotation_file)
    images = present_images(coco, image_dir, annotation_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_categories(out_dir / CATEGORY_FILE, classes)
    masks = []
    for info in images:
        mask_path = out_dir / f"{Path(info['file_name']).stem}.png"
        Image.fromarray(semantic_mask(coco, info, class_of, annotation_file)).save(mask_path)
        masks.append(str(mask_path))
    frame = pd.DataFrame({"image": [str(image_dir / i["file_name"]) for i in images], "split": split,
                          "source": SOURCE, "mask": masks})
    return SampleTable(empty_columns(frame), {"segmentation": classes})


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
    return SampleTable(empty_columns(frame), {"segmentation": classes})


def load_coco(annotation_file: Path) -> COCO:
    if not annotation_file.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {annotation_file}")
    try:
        dataset = json.loads(annotation_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{annotation_file}: not valid JSON ({exc})") from exc
    missing = [key for key in ("images", "annotations", "categories") if key not in dataset]
    if missing:
        raise ValueError(f"{annotation_file}: not COCO instance annotations, no {missing}")
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


def category_mapping(coco: COCO, annotation_file: Path) -> tuple[list[str], dict[int, int]]:
    """Class names (background first) and COCO category id -> contiguous class id."""
    cat_ids = sorted(coco.cats)
    if len(cat_ids) + 1 > SEG_IGNORE:
        raise ValueError(f"{annotation_file}: {len(cat_ids)} categories; 8-bit masks with {SEG_IGNORE} as "
                         f"'ignore' hold at most {SEG_IGNORE - 1}: keep fewer categories in the json")
    # Whitespace runs become one space: category_id.txt is one '<id>\t<name>' per line.
    names = [BACKGROUND] + [" ".join(str(coco.cats[c]["name"]).split()) for c in cat_ids]
    return names, {c: i for i, c in enumerate(cat_ids, start=1)}


def present_images(coco: COCO, image_dir: Path, annotation_file: Path) -> list[dict]:
    """The json's images (by id) whose file exists; missing ones are dropped with a warning."""
    images = [coco.imgs[i] for i in sorted(coco.imgs)]
    stems = pd.Series([Path(i["file_name"]).stem for i in images], dtype=object)
    if stems.duplicated().any():
        raise ValueError(f"{annotation_file}: two images share the file stem '{stems[stems.duplicated()].iloc[0]}', "
                         "so their masks would overwrite each other")
    missing = [i["file_name"] for i in images if not (image_dir / i["file_name"]).is_file()]
    if missing:
        warnings.warn(f"COCO: {len(missing)} of {len(images)} images of {annotation_file} are not in "
                      f"{image_dir} and are dropped (first: {missing[0]})", stacklevel=3)
    dropped = set(missing)
    return [i for i in images if i["file_name"] not in dropped]


def semantic_mask(coco: COCO, info: dict, class_of: dict[int, int], annotation_file: Path) -> np.ndarray:
    """(H, W) uint8 class ids for one image (see the module docstring for the painting order)."""
    shape = (info["height"], info["width"])
    mask = np.zeros(shape, np.uint8)
    instances, crowds = [], []
    for ann in coco.imgToAnns[info["id"]]:
        if ann["category_id"] not in class_of:
            raise ValueError(f"{annotation_file}: annotation {ann['id']} has unknown category {ann['category_id']}")
        pixels = coco.annToMask(ann).astype(bool)
        if pixels.shape != shape:
            raise ValueError(f"{annotation_file}: annotation {ann['id']} is {pixels.shape}, image {info['id']} "
                             f"is {shape}")
        (crowds if ann.get("iscrowd", 0) else instances).append((pixels, class_of[ann["category_id"]]))
    for pixels, class_id in sorted(instances, key=lambda item: -int(item[0].sum())):
        mask[pixels] = class_id
    for pixels, _ in crowds:
        mask[pixels] = SEG_IGNORE
    return mask


def write_categories(path: Path, classes: list[str]) -> None:
    path.write_text("".join(f"{i}\t{name}\n" for i, name in enumerate(classes)))


def images_by_stem(image_dir: Path) -> dict[str, Path]:
    """Image files anywhere under ``image_dir`` by stem; a stem found twice is an error."""
    found: dict[str, Path] = {}
    for path in sorted(image_dir.rglob("*")):
        if not (path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()):
            continue
        if path.stem in found:
            raise ValueError(f"{found[path.stem]} and {path} share a stem; cannot tell which a mask belongs to")
        found[path.stem] = path
    return found
