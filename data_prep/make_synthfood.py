"""Generate SynthFood, the small synthetic data set behind `make demo` and the fast tests.

    python data_prep/make_synthfood.py --out data/synthfood [--dishes 12 --per-dish 60 --size 128 --seed 0]

Writes Food-101 and FoodSeg103 layouts plus taxonomy.csv under --out (see foodmtl/synthfood/generate.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.synthfood.generate import generate_synthfood  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to create, e.g. data/synthfood")
    parser.add_argument("--dishes", type=int, default=12)
    parser.add_argument("--per-dish", type=int, default=60, help="images per dish, train and test together")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="of each dish's training images, listed in val.txt as the validation split")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate_synthfood(args.out, args.dishes, args.per_dish, args.size, args.seed,
                                 args.test_fraction, overwrite=args.overwrite, val_fraction=args.val_fraction)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"SynthFood: {args.dishes} dishes x {args.per_dish} images of {args.size} px (seed {args.seed}) "
          f"-> {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
