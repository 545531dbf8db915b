"""Generate SynthFood in MAFood-121's structure and layout (cuisines x dishes, food groups per image).

    python data_prep/make_synthfood_mafood121.py --out data/synthfood_mafood121 [--cuisines 4
        --dishes-per-cuisine 3 --per-dish 40 --size 64 --seed 0]

Writes ``--out/MAFood121/`` (images/, annotations/) as ``foodmtl/data/sets/mafood121.py`` reads it
(see foodmtl/synthfood/mafood121.py); ``experiments/mafood121/synth.yaml`` trains on it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.synthfood.mafood121 import generate_mafood121  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to create, e.g. data/synthfood_mafood121")
    parser.add_argument("--cuisines", type=int, default=4)
    parser.add_argument("--dishes-per-cuisine", type=int, default=3)
    parser.add_argument("--per-dish", type=int, default=40, help="images per dish, all splits together")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate_mafood121(args.out, args.cuisines, args.dishes_per_cuisine, args.per_dish, args.size,
                                 args.seed, overwrite=args.overwrite)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"SynthFood (MAFood-121 layout): {args.cuisines} cuisines x {args.dishes_per_cuisine} dishes x "
          f"{args.per_dish} images of {args.size} px (seed {args.seed}) -> {out}/MAFood121 "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
