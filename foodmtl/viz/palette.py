"""Class colours that stay distinguishable for hundreds of classes: the Glasbey palette.

Glasbey, Heijden, Toh & Gray (2007), "Colour displays for categorical images": each next
colour is the one farthest (in a perceptual colour space) from all colours chosen so far, so
every prefix of the table is as spread out as it can be and no two classes look alike, however
many there are. We ship colorcet's precomputed 256-colour table (``glasbey_bw_minc_20``: near
black, near white and greys excluded, so every colour reads as a hue over a photo and on a white
background) rather than regenerate it: a fixed table keeps colours identical across versions and
machines, and colorcet (HoloViz) is a small, pure-Python, well-kept dependency. PASCAL VOC's
bit-pattern palette, used before, puts muddy neighbours side by side ((0,128,0) and (128,128,0)).
"""
from __future__ import annotations

from functools import cache

import numpy as np


@cache
def glasbey() -> np.ndarray:
    """(256, 3) uint8. colorcet imports matplotlib and registers its colour maps (about a second),
    so it is imported when the first picture is drawn, not with the trainer."""
    import colorcet
    return np.round(np.asarray(colorcet.glasbey_bw_minc_20) * 255).astype(np.uint8)


def class_colours(n: int) -> np.ndarray:
    """(n, 3) uint8: class k gets Glasbey colour k (the table repeats past 256 classes)."""
    table = glasbey()
    return table[np.arange(n) % len(table)]


def mask_colours(n: int) -> np.ndarray:
    """(n, 3) uint8 for mask ids 0..n-1. Id 0 (background) is never drawn, so ids 1.. take the
    Glasbey colours from the first one on; row 0 is a placeholder."""
    table = glasbey()
    return table[(np.arange(n) - 1) % len(table)]


def as_float(colours: np.ndarray) -> np.ndarray:
    """uint8 colours as matplotlib's 0-1 floats."""
    return colours.astype(np.float64) / 255
