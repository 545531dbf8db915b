"""Image decoding, with JPEG DCT scaling when the model wants far fewer pixels than the file has.

libjpeg can decode straight to 1/2, 1/4 or 1/8 scale (PIL's ``draft``), which skips most of
the inverse DCT, colour conversion and the resize that would follow a full decode.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from foodmtl.data.transforms import A  # albumentations, imported where its update check is turned off


def load_rgb(path: str, min_side: int = 0) -> np.ndarray:
    """RGB uint8 (H, W, 3), decoded at the smallest JPEG scale whose short side is still
    >= ``min_side`` (0, or a non-JPEG: full size). Raises what PIL raises on a corrupt file."""
    with Image.open(path) as img:
        if min_side > 0:
            img.draft("RGB", (min_side, min_side))
        if img.mode != "RGB":
            return np.asarray(img.convert("RGB"))
        return np.asarray(img)


def decode_side(transform) -> int:
    """Short side that ``transform`` first scales images to (0 when it does not resize).

    Decoding to at least this side never upsamples a whole image; a random crop of it may be
    enlarged (up to ~2x for RandomResizedCrop's smallest crops of a square file).
    """
    for step in getattr(transform, "transforms", ()):
        if isinstance(step, A.RandomResizedCrop):
            return min(step.size)
        if isinstance(step, A.SmallestMaxSize) and isinstance(step.max_size, int):
            return step.max_size
    return 0
