"""FoodSeg103 (Wu et al., ACM MM 2021) as a SampleTable, read from its published layout.

``root/category_id.txt`` (lines ``<id>\\t<name>``, a single space also accepted, ids 0..103
in order, 0 = background; names may contain spaces), images
``root/Images/img_dir/{train,test}/*.jpg`` and masks ``root/Images/ann_dir/{train,test}/<stem>.png``
(8-bit class ids). An image without a mask is dropped with a warning. Paths come from
directory listings alone: no image or mask is opened.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from foodmtl.data.paths import SPACED_NAME, read_numbered_names, require_path
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions

SOURCE = "foodseg103"
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HOW_TO_GET = (
    "download FoodSeg103.zip from https://xiongweiwu.github.io/foodseg103.html (the password is "
    "given there), extract it and pass the folder that holds category_id.txt and Images/"
)


def read_foodseg103(root: str | Path) -> SampleTable:
    """One row per image that has a mask; ``vocab["segmentation"]`` in id order."""
    root = Path(root).expanduser().resolve()
    require(root)
    classes = read_category_ids(root / "category_id.txt")
    frame = pd.concat([split_frame(root / "Images", split) for split in SPLITS], ignore_index=True)
    frame["source"] = SOURCE
    return SampleTable(empty_columns(frame), {"segmentation": classes})


def require(path: Path, alternative: Path | None = None) -> None:
    require_path(path, "FoodSeg103", HOW_TO_GET, alternative)


def read_category_ids(path: Path) -> list[str]:
    """Class names by id from ``<id><tab or space><name>`` lines; names may contain spaces."""
    require(path)
    return read_numbered_names(path, SPACED_NAME)


def split_frame(images_root: Path, split: str) -> pd.DataFrame:
    """Rows of one split: every image of ``img_dir/<split>`` paired with ``ann_dir/<split>/<stem>.png``."""
    image_dir, mask_dir = images_root / "img_dir" / split, images_root / "ann_dir" / split
    require(image_dir)
    require(mask_dir)
    images = list_files(image_dir, IMAGE_SUFFIXES)
    masks = {Path(name).stem for name in list_files(mask_dir, (".png",))}
    stems = [Path(name).stem for name in images]
    unmasked = [name for name, stem in zip(images, stems) if stem not in masks]
    if unmasked:
        warnings.warn(f"FoodSeg103: {len(unmasked)} of {len(images)} images in {image_dir} have no mask "
                      f"in {mask_dir} and are dropped (first: {unmasked[0]})", stacklevel=3)
    kept = [(name, stem) for name, stem in zip(images, stems) if stem in masks]
    return pd.DataFrame({
        "image": [str(image_dir / name) for name, _ in kept],
        "split": split,
        "mask": [str(mask_dir / f"{stem}.png") for _, stem in kept],
    })


def list_files(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Sorted names of the files in ``folder`` whose suffix (any case) is one of ``suffixes``."""
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(suffixes))


def load(root: str, options: LoadOptions) -> SampleTable:
    return read_foodseg103(root)
