"""SynthFood's COCO instance annotations, derived from its semantic masks after they are written.

An instance is one *connected region* of one ingredient in the final mask (8-connected), not one
drawn piece: pieces of the same ingredient that touch merge into one region, and a piece cut in
two by a utensil or another piece becomes two. That is what the pixels show, and deriving it
from the masks leaves every other SynthFood file byte for byte as it was. Regions smaller than
``MIN_AREA`` pixels (slivers left between overlapping pieces) are dropped. Written as
``foodseg103/instances_<split>.json`` (RLE segmentations, categories = the ingredients with
their ``category_id.txt`` ids, so ids start at 1).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from scipy import ndimage

MIN_AREA = 4
EIGHT_CONNECTED = np.ones((3, 3), bool)


def write_instance_json(foodseg: Path, split: str, names: list[str]) -> Path:
    """``instances_<split>.json`` for the masks of ``ann_dir/<split>``; ``names``: ingredient k is id k."""
    images, annotations = [], []
    for image_id, mask_path in enumerate(sorted((foodseg / "Images" / "ann_dir" / split).glob("*.png")), start=1):
        mask = np.asarray(Image.open(mask_path))
        images.append({"id": image_id, "file_name": f"{mask_path.stem}.jpg", "height": mask.shape[0],
                       "width": mask.shape[1]})
        for category, region in regions(mask):
            annotations.append(annotation(len(annotations) + 1, image_id, category, region))
    categories = [{"id": k, "name": name} for k, name in enumerate(names, start=1)]
    path = foodseg / f"instances_{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def regions(mask: np.ndarray):
    """(ingredient id, (H, W) bool) per connected region of at least ``MIN_AREA`` pixels."""
    for category in np.unique(mask):
        if category == 0:
            continue
        labelled, count = ndimage.label(mask == category, EIGHT_CONNECTED)
        for k in range(1, count + 1):
            region = labelled == k
            if region.sum() >= MIN_AREA:
                yield int(category), region


def annotation(ann_id: int, image_id: int, category: int, region: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
    x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
    return {"id": ann_id, "image_id": image_id, "category_id": category, "iscrowd": 0,
            "area": float(region.sum()), "bbox": [x, y, w, h],
            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}}
