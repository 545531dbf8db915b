"""Semantic mask files: single-channel PNGs of per-pixel class ids, 8- or 16-bit.

A data set's masks share one depth, chosen from its class count by ``mask_dtype``: 8-bit
(PIL mode ``L``) while ids 0..254 suffice, else 16-bit (mode ``I;16``; the AIcrowd Food
Recognition Benchmark 2022 has 498 categories). The ignore value (unlabelled pixels, e.g. COCO
crowd regions) is the largest value of the file's type, never a class id: 255 in 8-bit files,
65535 in 16-bit ones; ``mask_ignore_value`` gives it for a mask as read, and the segmentation
task maps it to the training ignore index (``foodmtl.tasks.SEG_IGNORE``, -1). Pillow opens a 16-bit grayscale
PNG as mode ``I;16`` (older releases: ``I``, int32); both are returned as uint16. An RGB or RGBA
mask holds the ids in its red channel, which is what is read (UEC-FoodPix Complete's masks, see
``foodmtl/data/sets/uecfoodpix.py``; G and B are not read).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from foodmtl.errors import SampleError

IGNORE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def read_mask(path: str) -> np.ndarray:
    """(H, W) class ids as stored: uint8 for 8-bit and palette PNGs, uint16 for 16-bit ones, the red
    channel of an RGB(A) one."""
    with Image.open(path) as img:
        mask = np.asarray(img.getchannel("R") if img.mode in ("RGB", "RGBA") else img)
    if mask.dtype == np.int32 and mask.ndim == 2:  # mode "I": a 16-bit PNG opened by an older Pillow
        if mask.size and (mask.min() < 0 or mask.max() > 65535):
            raise SampleError(f"mask {path} holds values outside 0..65535")
        mask = mask.astype(np.uint16)
    return mask


def mask_dtype(num_classes: int) -> np.dtype:
    """The narrowest mask type whose ids 0..num_classes-1 stay below its ignore value."""
    for dtype, ignore in IGNORE.items():
        if num_classes <= ignore:
            return dtype
    raise ValueError(f"{num_classes} classes do not fit a 16-bit mask (at most {IGNORE[np.dtype(np.uint16)]})")


def mask_ignore_value(mask_or_dtype: np.ndarray | np.dtype | type) -> int:
    """The 'unlabelled' value of a uint8 (255) or uint16 (65535) mask."""
    dtype = mask_or_dtype.dtype if isinstance(mask_or_dtype, np.ndarray) else np.dtype(mask_or_dtype)
    if dtype not in IGNORE:
        raise TypeError(f"masks are uint8 or uint16, not {dtype}")
    return IGNORE[dtype]


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Save a uint8 (8-bit ``L``) or uint16 (16-bit ``I;16``) (H, W) mask as PNG."""
    mask_ignore_value(mask)  # refuses any other type: a silent cast would change ids
    if mask.ndim != 2:
        raise ValueError(f"a mask is (H, W), got shape {mask.shape}")
    Image.fromarray(mask).save(path, format="PNG")
