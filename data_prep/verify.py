"""Check a downloaded Food-101 / FoodX-251 folder before training on it.

    python data_prep/verify.py --dataset food101 --root DIR [--decode] [--workers N]

Prints images per split and per class (min/max), then every problem found: list files
that do not parse, missing images, unreadable images (PIL open + verify; ``--decode``
decodes every pixel, which also catches truncated files), class mismatches (image folders
vs classes.txt, classes without images, duplicated entries). Exit status 1 on any problem.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.data.food101 import read_food101  # noqa: E402
from foodmtl.data.foodx251 import read_foodx251  # noqa: E402
from foodmtl.data.table import SampleTable  # noqa: E402

READERS: dict[str, Callable[[str | Path], SampleTable]] = {"food101": read_food101, "foodx251": read_foodx251}
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)  # what PIL raises on bad files
SHOWN = 20  # problems listed per kind; the rest are counted


def check_image(job: tuple[str, bool]) -> tuple[str, str, str]:
    """(path, problem kind or "" when fine, detail) for one image."""
    path, decode = job
    if not os.path.isfile(path):
        return path, "missing file", ""
    try:
        with Image.open(path) as image:
            if decode:
                image.load()
            else:
                image.verify()
    except UNREADABLE as exc:
        return path, "unreadable image", str(exc)
    return path, "", ""


def image_problems(paths: list[str], decode: bool, workers: int) -> dict[str, list[str]]:
    """Problem lines by kind, checked in ``workers`` processes."""
    jobs = [(p, decode) for p in paths]
    if workers > 1:
        with Pool(workers) as pool:
            found = [r for r in pool.imap_unordered(check_image, jobs, chunksize=64) if r[1]]
    else:
        found = [r for r in map(check_image, jobs) if r[1]]
    by_kind: dict[str, list[str]] = {}
    for path, kind, detail in sorted(found):
        by_kind.setdefault(kind, []).append(f"{path} ({detail})" if detail else path)
    return by_kind


def class_problems(table: SampleTable, dataset: str, root: Path) -> list[str]:
    """Classes without images in a labelled split, folders unknown to the class list, duplicates."""
    problems = []
    classes = table.vocab["dish"]
    for split, part in table.frame.groupby("split", sort=False):
        labelled = part["dish"].dropna()
        empty = sorted(set(classes) - set(labelled)) if len(labelled) else []
        if empty:
            problems.append(f"{len(empty)} class(es) have no {split} images: {', '.join(empty)}")
    if dataset == "food101":
        folders = {p.name for p in (root / "images").iterdir() if p.is_dir()}
        problems += [f"folder images/{f} is not in meta/classes.txt" for f in sorted(folders - set(classes))]
        problems += [f"class {c} of meta/classes.txt has no folder images/{c}" for c in classes if c not in folders]
    duplicated = table.frame["image"][table.frame["image"].duplicated()].unique()
    problems += [f"image listed more than once: {p}" for p in duplicated]
    return problems


def summary(table: SampleTable) -> list[str]:
    """Per split: images, classes, fewest and most images of a class."""
    lines = []
    for split, part in table.frame.groupby("split", sort=False):
        if part["dish"].isna().all():
            lines.append(f"  {split}: {len(part)} images, unlabelled")
            continue
        counts = part["dish"].value_counts().reindex(table.vocab["dish"], fill_value=0)
        lines.append(f"  {split}: {len(part)} images, {int((counts > 0).sum())} classes, per class "
                     f"min {counts.min()} ({counts.idxmin()}) max {counts.max()} ({counts.idxmax()})")
    return lines


def report(kind: str, items: list[str]) -> None:
    for item in items[:SHOWN]:
        print(f"PROBLEM {kind}: {item}")
    if len(items) > SHOWN:
        print(f"PROBLEM {kind}: ... and {len(items) - SHOWN} more")


def verify(dataset: str, root: Path, decode: bool, workers: int) -> int:
    """Print the report; return the number of problems."""
    root = root.expanduser().resolve()
    try:
        table = READERS[dataset](root)
    except (FileNotFoundError, ValueError) as exc:
        print(f"PROBLEM cannot read {dataset}: {exc}")
        return 1
    print(f"{dataset} at {root}")
    print("\n".join(summary(table)))
    problems = {"class mismatch": class_problems(table, dataset, root)}
    problems |= image_problems(table.frame["image"].tolist(), decode, workers)
    print(f"checked {len(table)} images ({'full decode' if decode else 'open + verify'})")
    for kind, items in problems.items():
        report(kind, items)
    return sum(len(items) for items in problems.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(READERS))
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--decode", action="store_true", help="decode every image fully (slower, catches truncation)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    problems = verify(args.dataset, args.root, args.decode, args.workers)
    print(f"FAILED: {problems} problem(s)" if problems else "OK: no problems found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
