"""COCO segmentations checked before pycocotools rasterises them, so a bad shape is skipped, not fatal.

pycocotools 2.0.11 trusts its input (seen on this machine): a polygon of 4 numbers is taken
for a bounding box and fails (``TypeError: Argument 'bb' has incorrect type``); one of 2 numbers,
or an empty one, raises ``Exception: input type is not supported``; an empty polygon list raises
``IndexError``; an odd count silently loses its last number; a NaN coordinate makes ``rleFrPoly``
allocate without bound until the process is killed; and an RLE whose runs cover fewer pixels
than height x width decodes into uninitialised memory (``common/maskApi.c``: ``rleDecode`` only
guards against too many). So each shape is checked here first. The parts of a multi-part polygon
are checked one by one and the good ones kept; a problem is reported as text for the caller to
name the image and annotation.
"""
from __future__ import annotations

import numpy as np
from pycocotools.coco import COCO

FAR = 1.0  # a polygon point may lie at most this many image sizes outside the image


def rasterise(coco: COCO, ann: dict, hw: tuple[int, int]) -> tuple[np.ndarray | None, list[str]]:
    """(H, W) bool pixels of ``ann`` (None when none of it can be drawn), and what was skipped."""
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list) and segmentation:
        checked = [(part, polygon_problem(part, hw)) for part in segmentation]
        kept = [part for part, problem in checked if problem is None]
        problems = [f"polygon part {k} of {len(checked)}: {problem}"
                    for k, (_, problem) in enumerate(checked, start=1) if problem]
    elif isinstance(segmentation, dict):
        problem = rle_problem(segmentation, hw)
        kept, problems = (None, [problem]) if problem else (segmentation, [])
    else:
        kept, problems = None, ["no segmentation (a bounding box only?)" if not segmentation else
                                f"a segmentation that is neither polygons nor RLE: {str(segmentation)[:40]}"]
    if not kept:
        return None, problems
    try:
        return coco.annToMask({**ann, "segmentation": kept}).astype(bool), problems
    except Exception as exc:  # pycocotools raises bare Exception; one shape must not end a conversion
        return None, problems + [f"pycocotools cannot rasterise it ({type(exc).__name__}: {exc})"]


def polygon_problem(part: object, hw: tuple[int, int]) -> str | None:
    """Why pycocotools cannot draw this polygon part, or None."""
    if not isinstance(part, list) or not all(type(v) in (int, float) for v in part):
        return "not a list of numbers"
    if len(part) < 6 or len(part) % 2:
        return f"{len(part)} numbers, not x,y pairs of at least 3 points"
    xy = np.asarray(part, float).reshape(-1, 2)
    if not np.isfinite(xy).all():
        return "a coordinate that is not a finite number"
    size = np.array(hw[::-1], float)  # (width, height), as x, y
    if ((xy < -FAR * size) | (xy > (1 + FAR) * size)).any():
        return f"a point far outside the {hw[1]}x{hw[0]} image"
    return None


def rle_problem(rle: dict, hw: tuple[int, int]) -> str | None:
    """Why this RLE (compressed or not) does not describe exactly one (H, W) mask, or None."""
    height, width = hw
    if rle.get("size") != [height, width]:
        return f"an RLE of size {rle.get('size')} (height, width) on a {height}x{width} image"
    counts = rle.get("counts")
    runs = None
    if isinstance(counts, list) and all(type(c) is int and c >= 0 for c in counts):
        runs = counts
    elif isinstance(counts, (str, bytes)):
        runs = compressed_runs(counts if isinstance(counts, str) else counts.decode("latin-1"))
    if runs is None:
        return "RLE counts that are neither run lengths nor a COCO-compressed string"
    if sum(runs) != height * width:
        return f"RLE runs covering {sum(runs)} pixels, not {height}x{width} = {height * width}"
    return None


def compressed_runs(text: str) -> list[int] | None:
    """The run lengths of a COCO-compressed RLE string, None if it is malformed.

    pycocotools offers no way to read them back (only decode, which trusts the total), so this
    follows ``rleFrString`` in maskApi.c: 5 bits per character (ASCII 48..111), 0x20 means
    more characters follow, 0x10 in the last one is the sign; from the fourth run on, a run is
    stored as the difference to the run two before it."""
    runs: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            return None
        value |= (code & 0x1F) << shift
        shift += 5
        if code & 0x20:
            continue
        if code & 0x10:
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            return None
        runs.append(value)
        value = shift = 0
    return None if shift else runs
