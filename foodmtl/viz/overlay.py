"""A segmentation mask blended over its image, with a legend of the classes it shows."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LEGEND_FONT = 12
SWATCH = 12
PAD = 4


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 colours, PASCAL VOC's: class 0 (background) black, the rest far apart."""
    ids = np.arange(n)
    colours = np.zeros((n, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            colours[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return colours.astype(np.uint8)


def overlay_mask(image: np.ndarray, mask: np.ndarray, classes: list[str], ignore_index: int = 255,
                 alpha: float = 0.5) -> Image.Image:
    """``image`` (H, W, 3) uint8 with each pixel of class k blended towards ``palette[k]`` by
    ``alpha`` (``ignore_index`` pixels unchanged), and a legend of the classes present to its right."""
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} and image {image.shape[:2]} differ in size")
    colours = palette(len(classes))
    labelled = mask != ignore_index
    blended = image.copy()
    tint = colours[mask[labelled]].astype(np.float32)
    blended[labelled] = np.round((1 - alpha) * image[labelled] + alpha * tint).astype(np.uint8)
    present = [int(k) for k in np.unique(mask[labelled])]
    return with_legend(Image.fromarray(blended), [(classes[k], tuple(colours[k])) for k in present])


def with_legend(picture: Image.Image, entries: list[tuple[str, tuple[int, ...]]]) -> Image.Image:
    """``picture`` with a white panel to its right listing (name, colour) entries."""
    font = ImageFont.load_default(size=LEGEND_FONT)
    row = max(SWATCH, LEGEND_FONT) + PAD
    text_width = max((font.getlength(name) for name, _ in entries), default=0)
    width = picture.width + int(SWATCH + 3 * PAD + text_width) if entries else picture.width
    canvas = Image.new("RGB", (width, max(picture.height, PAD + row * len(entries))), "white")
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = picture.width + PAD
    for i, (name, colour) in enumerate(entries):
        y = PAD + i * row
        draw.rectangle((x, y, x + SWATCH - 1, y + SWATCH - 1), fill=colour, outline="gray")
        draw.text((x + SWATCH + PAD, y + SWATCH // 2), name, fill="black", font=font, anchor="lm")
    return canvas
