"""COCO instance annotations read directly, one object per instance (no mask files written).

Reuses ``coco.py``'s checks (``load_coco``: malformed JSON, missing keys, ids used twice and
unknown categories are a DataError) and ``coco_shapes.py``'s rasteriser (polygons, compressed and
uncompressed RLE). Categories become classes by *name*, in ascending COCO id order, so
non-contiguous ids (the Food Recognition Benchmark's 101xxx) map to 0..K-1 and a second source
with the same names joins them; there is no limit on their number. No background class: the
detector adds its own.

A row's label is ``<annotation file>#<image id>``; the image's instances are rasterised when the
sample is read (``load_instances``, one parsed file cached per worker). An image listed in the
json with no annotation is labelled "no instance" (a negative); an image not in any instance
json is unlabelled and adds no instance loss. Crowd annotations (``iscrowd=1``) are kept as
ignore regions, flagged ``crowd``: Mask R-CNN does not train on them, and COCOeval receives them
as crowd ground truth, so a detection inside one is neither a hit nor a false positive (COCO's
protocol: pycocotools ``cocoeval.py``, ``evaluateImg``). Shapes pycocotools cannot draw
(``coco_shapes.py``: a polygon of fewer than 3 points, an RLE of the wrong size, no segmentation)
are skipped, counted per file and listed in the table's ``notes``. ``category_ids`` gives each
class name its COCO category id, which ``foodmtl predict`` writes back into coco_results.json.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from pycocotools.coco import COCO

from foodmtl.data.sets.coco import load_coco, present_images
from foodmtl.data.formats.coco_shapes import polygon_problem, rasterise, rle_problem
from foodmtl.errors import SampleError
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions
from foodmtl.data.table import concat_tables
from foodmtl.data.sets.coco import split_folders

SOURCE = "coco"


def read_coco_instances(annotation_file: str | Path, image_dir: str | Path, split: str,
                        source: str = SOURCE) -> SampleTable:
    """One row per listed image found in ``image_dir``, its ``instances`` label, and the class names."""
    annotation_file, image_dir = Path(annotation_file).resolve(), Path(image_dir).resolve()
    coco = cached_coco(str(annotation_file))[0]  # parsed once: the samples and category_ids read it again
    images = present_images(coco, image_dir, annotation_file)
    skipped = count_degenerate(coco)
    frame = pd.DataFrame({"image": [str(image_dir / i["file_name"]) for i in images], "split": split,
                          "source": source, "instances": [f"{annotation_file}#{i['id']}" for i in images]})
    notes = [f"{annotation_file.name}: {skipped} degenerate shape(s) skipped"] if skipped else []
    return SampleTable(empty_columns(frame), {"instances": class_names(coco)}, notes)


def class_names(coco: COCO) -> list[str]:
    return [" ".join(str(coco.cats[c]["name"]).split()) for c in sorted(coco.cats)]


def count_degenerate(coco: COCO) -> int:
    """Non-crowd annotations with a shape that cannot be drawn in full (checked, not rasterised)."""
    count = 0
    for ann in coco.dataset["annotations"]:
        info = coco.imgs.get(ann["image_id"])
        if info is None or ann.get("iscrowd", 0):
            continue
        count += shape_problem(ann.get("segmentation"), (info["height"], info["width"])) is not None
    return count


def shape_problem(segmentation, hw: tuple[int, int]) -> str | None:
    if isinstance(segmentation, list) and segmentation:
        return next((p for p in (polygon_problem(part, hw) for part in segmentation) if p), None)
    if isinstance(segmentation, dict):
        return rle_problem(segmentation, hw)
    return "no segmentation"


@lru_cache(maxsize=8)
def cached_coco(annotation_file: str) -> tuple[COCO, dict[int, str]]:
    """The parsed file and its category id -> class name (each DataLoader worker parses it once)."""
    coco = load_coco(Path(annotation_file))
    return coco, {c: " ".join(str(coco.cats[c]["name"]).split()) for c in coco.cats}


def category_ids(annotation_files: Iterable[str]) -> dict[str, set[int]]:
    """Class name -> the COCO category ids it has in these files (one, unless the files disagree)."""
    ids: dict[str, set[int]] = {}
    for annotation_file in annotation_files:
        for category, name in cached_coco(annotation_file)[1].items():
            ids.setdefault(name, set()).add(category)
    return ids


def load_instances(label: str, image_hw: tuple[int, int],
                   classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, H, W) uint8 masks, (N,) class indices into ``classes`` and (N,) crowd flags of one image's
    drawable instances and crowd regions."""
    annotation_file, image_id = label.rsplit("#", 1)
    coco, name_of = cached_coco(annotation_file)
    info = coco.imgs[int(image_id)]
    hw = (info["height"], info["width"])
    if hw != tuple(image_hw):
        raise SampleError(f"{annotation_file}: image {image_id} is {hw[1]}x{hw[0]} (WxH) there but its file is "
                          f"{image_hw[1]}x{image_hw[0]}")
    index = {name: k for k, name in enumerate(classes)}
    masks, labels, crowd = [], [], []
    for ann in coco.imgToAnns[int(image_id)]:
        pixels, _ = rasterise(coco, ann, hw)
        if pixels is not None and pixels.any():
            masks.append(pixels)
            labels.append(index[name_of[ann["category_id"]]])
            crowd.append(bool(ann.get("iscrowd", 0)))
    if not masks:
        return np.zeros((0, *hw), np.uint8), np.zeros(0, np.int64), np.zeros(0, bool)
    return np.stack(masks).astype(np.uint8), np.asarray(labels, np.int64), np.asarray(crowd, bool)


def load(root: str, options: LoadOptions) -> SampleTable:
    """COCO instance json read directly (polygons, RLE): ``root/<split>/images/`` +
    ``root/<split>/annotations.json``; no conversion step."""
    return concat_tables([read_coco_instances(split / "annotations.json", split / "images", split.name)
                          for split in split_folders(root, "annotations.json", "COCO instances")])
