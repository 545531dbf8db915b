"""Semantic mask files: single-channel PNGs of per-pixel class ids (8- or 16-bit)."""
from __future__ import annotations

import numpy as np
from PIL import Image


def read_mask(path: str) -> np.ndarray:
    """(H, W) class ids as stored (uint8 for 8-bit and palette PNGs, uint16/int32 for 16-bit)."""
    with Image.open(path) as img:
        return np.asarray(img)
