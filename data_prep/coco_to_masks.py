"""Rasterise COCO-format instance annotations into semantic PNG masks (FoodSeg103 style).

    python data_prep/coco_to_masks.py --ann FILE --images DIR --out DIR --split train

Writes ``DIR/<image stem>.png`` (8-bit class ids, 0 = background, 255 = crowd) and
``DIR/category_id.txt``; see ``foodmtl/data/coco.py`` for the rules. Use one ``--out``
folder per split. Exit status 1 when the input cannot be read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.data.coco import coco_to_masks  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ann", required=True, type=Path, help="COCO instance annotation json")
    parser.add_argument("--images", required=True, type=Path, help="folder the json's file_name entries are in")
    parser.add_argument("--out", required=True, type=Path, help="folder for the masks of this split")
    parser.add_argument("--split", required=True, help="split name for the rows, e.g. train / val / test")
    args = parser.parse_args(argv)
    try:
        table = coco_to_masks(args.ann, args.images, args.out, args.split)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    classes = len(table.vocab["segmentation"]) - 1
    print(f"wrote {len(table)} masks ({classes} categories + background) to {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
