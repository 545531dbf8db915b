"""Instance pictures for ``foodmtl predict``: each instance's mask tinted in its class colour, its box
outlined and labelled with class and score. Enlarged like the segmentation panels (``overlay.py``:
a whole factor up to at least ``PANEL_MIN`` px, masks by nearest neighbour)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from foodmtl.viz.overlay import ALPHA, PANEL_MIN
from foodmtl.viz.palette import mask_colours


def instance_figure(pixels: np.ndarray, found: dict, classes: list[str]) -> Image.Image:
    """``pixels`` (H, W, 3) uint8; ``found``: the detector's boxes, labels, scores and (N, H, W) mask
    probabilities of one image (class index ``k`` takes mask colour ``k + 1``: no background)."""
    scale = max(1, -(-PANEL_MIN // max(pixels.shape[:2])))
    image = np.repeat(np.repeat(pixels.astype(float), scale, 0), scale, 1)
    colours = mask_colours(len(classes) + 1)
    masks = (found["masks"] > 0.5).cpu().numpy()
    labels = found["labels"].cpu().tolist()
    for mask, label in zip(masks, labels):
        big = np.repeat(np.repeat(mask, scale, 0), scale, 1)
        image[big] = (1 - ALPHA) * image[big] + ALPHA * colours[label + 1]
    picture = Image.fromarray(image.round().astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for box, label, score in zip(found["boxes"].cpu().tolist(), labels, found["scores"].cpu().tolist()):
        colour = tuple(int(c) for c in colours[label + 1])
        x0, y0, x1, y1 = (v * scale for v in box)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=2)
        draw.text((x0 + 3, y0 + 2), f"{classes[label]} {score:.2f}", fill=colour)
    return picture
