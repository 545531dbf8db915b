"""Rasterise COCO-format instance annotations into semantic PNG masks (FoodSeg103 style).

    python data_prep/coco_to_masks.py --ann FILE --images DIR --out DIR --split train

Writes ``DIR/<image stem>.png`` (class ids, 0 = background; 8-bit with 255 = crowd for up to
254 categories, else 16-bit with 65535 = crowd) and ``DIR/category_id.txt``; see
``foodmtl/data/sets/coco.py`` for the rules. Use one ``--out`` folder per split. A shape that cannot
be drawn (e.g. a polygon of fewer than 3 points) is skipped with a ``warning:`` line naming the
image and annotation, and counted in the last line. Input that cannot be read: one ``error:``
line, exit status 2, nothing written.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.data.sets.coco import coco_to_masks  # noqa: E402
from foodmtl.errors import DataError  # noqa: E402
from foodmtl.data.masks import mask_dtype  # noqa: E402

BAD_INPUT = 2
SHOWN = 20  # warnings printed; the rest are counted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ann", required=True, type=Path, help="COCO instance annotation json")
    parser.add_argument("--images", required=True, type=Path, help="folder the json's file_name entries are in")
    parser.add_argument("--out", required=True, type=Path, help="folder for the masks of this split")
    parser.add_argument("--split", required=True, help="split name for the rows, e.g. train / val / test")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            table = coco_to_masks(args.ann, args.images, args.out, args.split)
    except (FileNotFoundError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    ours = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    for message in ours[:SHOWN]:
        print(f"warning: {message}", file=sys.stderr)
    if len(ours) > SHOWN:
        print(f"warning: ... and {len(ours) - SHOWN} more", file=sys.stderr)
    classes = len(table.vocab["segmentation"])
    print(f"wrote {len(table)} masks ({classes - 1} categories + background, "
          f"{mask_dtype(classes).itemsize * 8}-bit) to {args.out.resolve()}; "
          f"skipped {len(table.notes)} shape(s) that cannot be drawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
