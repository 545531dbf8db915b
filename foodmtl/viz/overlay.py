"""Segmentation pictures: the image, its ground truth and the prediction side by side, labelled,
with one legend of the classes they show.

Model inputs are small (64-128 px), so a panel's longer side is enlarged to at least ``PANEL_MIN``
px (by a whole factor; masks by nearest neighbour, so each mask cell stays a sharp block) and
large images are shrunk to ``PANEL_MAX``. A class region is tinted with its Glasbey colour
(``foodmtl.viz.palette``) and outlined at full colour, so the food's texture stays visible
and two touching classes stay apart; background (id 0) is left untinted, so the plate keeps
its colour; unlabelled ground-truth pixels are hatched grey. Drawn with PIL rather than
matplotlib: pixel-exact, and no figure machinery for a picture per predicted image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from foodmtl.viz.palette import mask_colours

BACKGROUND = 0
PANEL_MIN, PANEL_MAX = 256, 512
ALPHA = 0.45          # tint inside a region; its outline is drawn at full colour
OUTLINE = 2           # px, on the enlarged panel
HATCH = 4             # px, stripes of unlabelled pixels
GREY = (128, 128, 128)
TITLE_FONT, LEGEND_FONT = 16, 13
SWATCH, PAD, GAP = 14, 6, 8


@dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: tuple[int, int, int] | None  # None: an empty (untinted) box
    hatched: bool = False


def denormalised(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A model input, (3, H, W) normalised per channel as ``(pixel / 255 - mean) / std``
    (albumentations' ``Normalize``), back to the (H, W, 3) uint8 pixels: ``x * std + mean``
    clipped to [0, 1], times 255, rounded to the nearest integer, so a picture of what the model
    saw has the file's own pixel values."""
    channels = np.asarray(image, np.float64) * np.reshape(std, (3, 1, 1)) + np.reshape(mean, (3, 1, 1))
    return np.rint(np.clip(channels, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def comparison_figure(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: list[str],
                      ignore_index: int) -> Image.Image:
    """image | ground truth | prediction, titled, with one legend of the classes in either mask
    (marked when a class is in only one of them)."""
    check_shapes(image, truth, predicted)
    big, (t, p) = enlarged(image, [truth, predicted])
    colours = mask_colours(len(classes))
    panels = [("image", big), ("ground truth", tinted(big, t, colours, ignore_index)),
              ("prediction", tinted(big, p, colours, ignore_index))]
    return compose(panels, legend_entries(classes, {"ground truth": truth, "prediction": predicted}, ignore_index))


def prediction_figure(image: np.ndarray, predicted: np.ndarray, classes: list[str]) -> Image.Image:
    """image | prediction, titled, with a legend of the predicted classes."""
    check_shapes(image, predicted)
    big, (p,) = enlarged(image, [predicted])
    panels = [("image", big), ("prediction", tinted(big, p, mask_colours(len(classes)), None))]
    return compose(panels, legend_entries(classes, {"prediction": predicted}, None))


def check_shapes(image: np.ndarray, *masks: np.ndarray) -> None:
    for mask in masks:
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {mask.shape} and image {image.shape[:2]} differ in size")


def display_size(height: int, width: int) -> tuple[int, int]:
    """Panel size: small inputs enlarged by a whole factor to >= PANEL_MIN, large ones shrunk to PANEL_MAX."""
    longest = max(height, width)
    if longest < PANEL_MIN:
        factor = math.ceil(PANEL_MIN / longest)
    elif longest > PANEL_MAX:
        factor = PANEL_MAX / longest
    else:
        factor = 1
    return max(1, round(height * factor)), max(1, round(width * factor))


def enlarged(image: np.ndarray, masks: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The image resampled bicubically to ``display_size``, the masks by nearest neighbour."""
    height, width = display_size(*image.shape[:2])
    big = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))
    rows = np.arange(height) * image.shape[0] // height
    cols = np.arange(width) * image.shape[1] // width
    return big, [m[rows][:, cols] for m in masks]


def tinted(image: np.ndarray, mask: np.ndarray, colours: np.ndarray, ignore_index: int | None) -> np.ndarray:
    """Class k > 0 pixels blended towards ``colours[k]`` by ALPHA, OUTLINE px inside each region's
    border at full colour; background untouched; ``ignore_index`` pixels faded and hatched grey."""
    ignored = mask == ignore_index if ignore_index is not None else np.zeros(mask.shape, bool)
    drawn = (mask != BACKGROUND) & ~ignored
    if drawn.any() and mask[drawn].max() >= len(colours):
        raise ValueError(f"mask has class id {int(mask[drawn].max())}, but only {len(colours)} classes")
    out = image.astype(np.float64)
    out[drawn] = (1 - ALPHA) * out[drawn] + ALPHA * colours[mask[drawn]]
    edge = borders(mask) & drawn
    out[edge] = colours[mask[edge]]
    out[ignored] = (out[ignored] + 255) / 2
    out[ignored & stripes(mask.shape)] = GREY
    return np.round(out).astype(np.uint8)


def borders(mask: np.ndarray) -> np.ndarray:
    """Pixels within OUTLINE px (along a row or column) of a pixel with another id."""
    edge = np.zeros(mask.shape, bool)
    for d in range(1, OUTLINE + 1):
        rows, cols = mask[d:] != mask[:-d], mask[:, d:] != mask[:, :-d]
        edge[d:] |= rows
        edge[:-d] |= rows
        edge[:, d:] |= cols
        edge[:, :-d] |= cols
    return edge


def stripes(shape: tuple[int, ...]) -> np.ndarray:
    """Diagonal stripes HATCH px wide."""
    return (np.add.outer(np.arange(shape[0]), np.arange(shape[1])) // HATCH) % 2 == 0


def legend_entries(classes: list[str], masks: dict[str, np.ndarray], ignore_index: int | None) -> list[LegendEntry]:
    """The tinted classes present in any of ``masks`` (id order; "only in <panel>" when in one of
    several), then untinted background and unlabelled pixels when present."""
    colours = mask_colours(len(classes))
    present = {name: set(np.unique(m).tolist()) for name, m in masks.items()}
    shown = sorted(set().union(*present.values()) - {BACKGROUND, ignore_index})
    entries = []
    for k in shown:
        holders = [name for name, ids in present.items() if k in ids]
        only = f" (only in {holders[0]})" if len(masks) > 1 and len(holders) == 1 else ""
        entries.append(LegendEntry(classes[k] + only, tuple(int(c) for c in colours[k])))
    if any(BACKGROUND in ids for ids in present.values()):
        entries.append(LegendEntry(f"{classes[BACKGROUND]} (untinted)", None))
    if ignore_index is not None and any(ignore_index in ids for ids in present.values()):
        entries.append(LegendEntry("not labelled", GREY, hatched=True))
    return entries


def compose(panels: list[tuple[str, np.ndarray]], entries: list[LegendEntry]) -> Image.Image:
    """Panels side by side under their titles, the legend in rows below them."""
    title_font = ImageFont.load_default(size=TITLE_FONT)
    header = TITLE_FONT + 2 * PAD
    width = 2 * PAD + sum(p.shape[1] for _, p in panels) + GAP * (len(panels) - 1)
    height = max(p.shape[0] for _, p in panels)
    legend = LegendLayout(entries, width)
    canvas = Image.new("RGB", (width, header + height + legend.height), "white")
    draw = ImageDraw.Draw(canvas)
    x = PAD
    for title, pixels in panels:
        canvas.paste(Image.fromarray(pixels), (x, header))
        draw.text((x + pixels.shape[1] // 2, header // 2), title, fill="black", font=title_font, anchor="mm")
        x += pixels.shape[1] + GAP
    legend.draw(canvas, header + height)
    return canvas


class LegendLayout:
    """Legend entries in rows of as many equal columns as the width allows."""

    def __init__(self, entries: list[LegendEntry], width: int):
        self.entries = entries
        self.font = ImageFont.load_default(size=LEGEND_FONT)
        text = max((self.font.getlength(e.label) for e in entries), default=0)
        self.column = int(SWATCH + 3 * PAD + text)
        self.columns = max(1, min(len(entries), (width - 2 * PAD) // self.column))
        self.row = max(SWATCH, LEGEND_FONT) + PAD
        self.height = 2 * PAD + math.ceil(len(entries) / self.columns) * self.row if entries else 0

    def draw(self, canvas: Image.Image, top: int) -> None:
        draw = ImageDraw.Draw(canvas)
        for i, entry in enumerate(self.entries):
            x = PAD + (i % self.columns) * self.column
            y = top + PAD + (i // self.columns) * self.row
            canvas.paste(swatch(entry), (x, y))
            draw.rectangle((x, y, x + SWATCH - 1, y + SWATCH - 1), outline="gray")
            draw.text((x + SWATCH + PAD, y + SWATCH // 2), entry.label, fill="black", font=self.font, anchor="lm")


def swatch(entry: LegendEntry) -> Image.Image:
    pixels = np.full((SWATCH, SWATCH, 3), 255, np.uint8)
    if entry.colour is not None:
        pixels[stripes(pixels.shape[:2]) if entry.hatched else slice(None)] = entry.colour
    return Image.fromarray(pixels)
