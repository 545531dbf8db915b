"""UEC-FoodPix Complete (Okamoto & Yanai, 2021) as a SampleTable: 10,000 food photos (9,000
train, 1,000 test) with per-pixel masks of 102 food classes; an image shows several foods, so
there is no dish label per image.

Layout of the release (https://mm.cs.uec.ac.jp/uecfoodpix/), as it unpacks::

    UECFOODPIXCOMPLETE/data/category.txt         a header line (id, name), then <id><TAB><name>, ids 1..102
    UECFOODPIXCOMPLETE/data/train9000.txt        one image id a line; test1000.txt likewise
    UECFOODPIXCOMPLETE/data/UECFoodPIXCOMPLETE/{train,test}/img/<id>.jpg
    UECFOODPIXCOMPLETE/data/UECFoodPIXCOMPLETE/{train,test}/mask/<id>.png

A mask is an RGB PNG whose red channel is the class id (0 background, 101 ``others``, 102
``beverage``); ``foodmtl.data.masks.read_mask`` returns that channel, so the masks are used as
released. What was checked, and where (no release README was found in the searchable sources):

- chtzs/swin-tuna: ``configs/datasets/uecfoodpix_complete_640x640.py`` reads
  ``UECFOODPIXCOMPLETE/data/UECFoodPIXCOMPLETE/{train,test}/{img,mask}``;
  ``swin_tuna/mmseg/uecfoodpix.py`` names background + the 102 classes (101 ``others``, 102
  ``beverage``) with palette ``[id, 0, 0]``; ``swin_tuna/mmseg/datasets/custom_loading.py``
  takes channel R of the mask as PIL opens it (a 3-channel array).
- HitBadTrap/Foodseg-uecfoodpix (``mmseg/datasets/transforms/loading.py``): channel 2 of the
  mask decoded in BGR order, i.e. red. A CoreNet-based loader reads ``train9000.txt`` /
  ``test1000.txt`` under ``data/`` (ids, ``.jpg`` appended) and takes red as well; a YOLO
  converter skips the first line of ``category.txt``, splits the rest on a tab, and falls back
  to G where R is 0, with no reason given. No other loader reads G or B; foodmtl does not.

Images whose mask does not have the image's size. swin-tuna's loader names test/10873 as one
whose width and height "are sometimes swapped", and another public validator transposes such
masks. Both decoded the image with OpenCV (mmcv's default backend, ``cv2.imread``), which by
default turns a JPEG by its EXIF orientation; swin-tuna's fix reads image and mask with PIL,
which does not, and transposes both alike (so they still match each other). So the likely cause
is EXIF rotation, and foodmtl, which decodes with PIL and ignores EXIF, would see such pairs
match. This is inferred from loaders, not seen on the data, so the reader compares every mask's
size with its image's (PIL reads only the headers) and drops a pair that differs. Masks of the
transposed size are counted apart, with how many of those images carry an EXIF orientation that
swaps width and height (5 to 8): such a mask may have been drawn on the turned view, and turning
it back needs that orientation, not a transpose (which would mirror the labels), so these pairs
are dropped, not fixed. A pair whose image or mask is missing or unreadable is kept, like a
missing image of any reader: ``data_prep/verify.py`` reports it, training skips and counts it.
Time for the size check: ``benchmarks/readers.py``.

A list line that is not one id, an id listed twice or in both lists, and a ``category.txt`` line
that is not ``<id><TAB><name>`` with ids counting up from 1 (or from 0, the background) are
DataErrors naming the file and line. CRLF line ends are read too.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from foodmtl.errors import DataError
from foodmtl.data.paths import numbered_lines, read_text, require_path
from foodmtl.data.formats.split_lists import require_listed_once
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.sets import LoadOptions
from foodmtl.errors import ConfigError

log = logging.getLogger(__name__)

SOURCE = "uecfoodpix"
SPLITS = {"train": "train9000.txt", "test": "test1000.txt"}
INNER = "UECFoodPIXCOMPLETE"
BACKGROUND = "background"
EXIF_ORIENTATION = 0x0112
EXIF_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that swap width and height
SHOWN = 3  # ids named in a note
HOW_TO_GET = ("download UEC-FoodPix Complete from https://mm.cs.uec.ac.jp/uecfoodpix/, extract it and pass the "
              "UECFOODPIXCOMPLETE folder (or its data/ folder); check it with "
              "`python data_prep/verify.py --dataset uecfoodpix --root DIR`")


def read_uecfoodpix(root: str | Path) -> SampleTable:
    """One row per listed image, but those whose mask does not have the image's size;
    ``vocab["segmentation"]`` is background, then category.txt in id order."""
    root = Path(root).expanduser().resolve()
    data = root / "data" if (root / "data" / "category.txt").is_file() else root
    require_path(data / "category.txt", "UEC-FoodPix Complete", HOW_TO_GET, alternative=root / "data" / "category.txt")
    classes = read_categories(data / "category.txt")
    frame = read_lists(data)
    notes: list[str] = []
    folder = str(data / INNER) + "/" + frame["split"]
    frame["image"] = folder + "/img/" + frame["id"] + ".jpg"
    frame["mask"] = folder + "/mask/" + frame["id"] + ".png"
    frame = keep_matching_sizes(frame, notes)
    frame["source"] = SOURCE
    for note in notes:
        log.info("UEC-FoodPix Complete: %s", note)
    return SampleTable(empty_columns(frame), {"segmentation": classes}, notes)


def read_categories(path: Path) -> list[str]:
    """Class names by mask id, ``background`` first: a header line, then ``<id><TAB><name>``."""
    names: list[str] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in (line.split("\t", 1) if "\t" in line else line.split(maxsplit=1))]
        if not names and fields[0].lower() == "id":
            continue
        if not names and fields[0] == "1":
            names.append(BACKGROUND)
        if len(fields) != 2 or not fields[1] or fields[0] != str(len(names)):
            raise DataError(path, f"expected '{len(names)}<TAB><name>' (ids count up from 1, or 0 for the "
                                  f"background), got '{line.strip()}'", line=number)
        names.append(fields[1])
    if len(names) < 2:
        raise DataError(path, "names no class")
    return names


def read_lists(data: Path) -> pd.DataFrame:
    """id and split of every listed image."""
    parts, earlier = [], {}
    for split, name in SPLITS.items():
        path = data / name
        require_path(path, "UEC-FoodPix Complete", HOW_TO_GET)
        lines = numbered_lines(path)
        bad = lines.str.contains(r"[\s/\\]")
        if bad.any():
            line = int(bad.idxmax())
            raise DataError(path, f"expected one image id, got '{lines[line]}'", line=line)
        require_listed_once(path, lines, lines, earlier)
        parts.append(pd.DataFrame({"id": lines.to_numpy(), "split": split}))
    return pd.concat(parts, ignore_index=True)


def keep_matching_sizes(frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The rows whose mask has its image's size (or whose files cannot be read: not this check's
    call); the others counted in ``notes``."""
    transposed, rotated, other = [], 0, []
    keep = []
    for split, key, image, mask in zip(frame["split"], frame["id"], frame["image"], frame["mask"]):
        image_size, mask_size = header_size(image), header_size(mask)
        keep.append(image_size is None or mask_size is None or image_size == mask_size)
        if keep[-1]:
            continue
        if mask_size == image_size[::-1]:
            transposed.append(f"{split}/{key}")
            rotated += exif_orientation(image) in EXIF_SWAPS_SIDES
        else:
            other.append(f"{split}/{key}")
    if transposed:
        notes.append(f"{len(transposed)} mask(s) are their image's size transposed ({rotated} of these images carry an "
                     f"EXIF orientation that swaps width and height): dropped ({named(transposed)})")
    if other:
        notes.append(f"{len(other)} mask(s) differ from their image's size: dropped ({named(other)})")
    return frame[np.array(keep, dtype=bool)].reset_index(drop=True)


def header_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the file's header, or None when it is missing or not an image."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError):  # missing, or not an image (UnidentifiedImageError is an OSError)
        return None


def exif_orientation(path: str) -> int:
    with Image.open(path) as img:
        return int(img.getexif().get(EXIF_ORIENTATION, 1))


def named(keys: list[str]) -> str:
    return ", ".join(keys[:SHOWN]) + (", ..." if len(keys) > SHOWN else "")


def load(root: str, options: LoadOptions) -> SampleTable:
    """Masks only (their classes are ingredients with ``task_options.ingredients.from_masks``); no dish
    label, so no taxonomy to join."""
    if options.taxonomy:
        raise ConfigError("uecfoodpix has no dish label to join a taxonomy on; drop data.taxonomy")
    return read_uecfoodpix(root)
