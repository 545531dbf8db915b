"""Check a downloaded data set's folder before training on it: any set with a module in
``foodmtl/data/sets/`` (found by name there, read by its ``load``, as ``foodmtl train`` reads it).

    python data_prep/verify.py --dataset food101 --root DIR [--decode] [--workers N]

Prints images per split and per class (min/max; for a split without dish labels, what it does
label), then every problem found: list files
that do not parse, missing images, unreadable images (PIL open + verify; ``--decode``
decodes every pixel, which also catches truncated files), class mismatches (image folders
vs classes.txt, classes without images, duplicated entries); masks are checked like images, and
the quirks the reader handled are printed as ``note:`` lines. Exit status 1 on any problem.
Existence is checked with one directory listing per folder (not one stat per file) and the
images in chunks over ``--workers`` processes, so a million entries take well under a minute.
"""
from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import Pool
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.config.tasks import KNOWN_TASKS  # noqa: E402
from foodmtl.data import sets  # noqa: E402
from foodmtl.data.table import SampleTable  # noqa: E402
from foodmtl.tracking.progress import progress  # noqa: E402

UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)  # what PIL raises on bad files
SHOWN = 20  # problems listed per kind; the rest are counted
CHUNK = 2000  # images per worker task: only their problems travel back
LABEL_NAMES = {"mask": "masks", "instances": "instance lists", "ingredients": "ingredient lists"}


def check_images(job: tuple[list[str], bool]) -> list[tuple[str, str, str]]:
    """(path, problem kind, detail) of the unreadable images among ``paths``."""
    paths, decode = job
    found = []
    for path in paths:
        try:
            with Image.open(path) as image:
                if decode:
                    image.load()
                else:
                    image.verify()
        except FileNotFoundError:
            found.append((path, "missing file", ""))
        except UNREADABLE as exc:
            found.append((path, "unreadable image", str(exc)))
    return found


def missing_files(paths: list[str]) -> list[str]:
    """Listed paths absent from their folder: one directory listing per folder, not a stat per file."""
    listings: dict[str, set[str]] = {}
    missing = []
    for path in paths:
        folder, name = os.path.split(path)
        if folder not in listings:
            listings[folder] = folder_names(folder)
        if name not in listings[folder]:
            missing.append(path)
    return missing


def folder_names(folder: str) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except OSError:
        return set()


def image_problems(paths: list[str], decode: bool, workers: int) -> dict[str, list[str]]:
    """Problem lines by kind; the existing images are opened in ``workers`` processes."""
    missing = missing_files(paths)
    gone = set(missing)
    present = [p for p in paths if p not in gone] if gone else paths
    jobs = [(present[i:i + CHUNK], decode) for i in range(0, len(present), CHUNK)]

    def counted(parts):  # a progress bar over the chunks, on a terminal only
        return progress(parts, f"checking images ({CHUNK} a chunk)", total=len(jobs), unit="chunk")

    if workers > 1 and len(jobs) > 1:
        with Pool(workers) as pool:
            found = [r for part in counted(pool.imap_unordered(check_images, jobs)) for r in part]
    else:
        found = [r for part in counted(map(check_images, jobs)) for r in part]
    found += [(path, "missing file", "") for path in missing]
    by_kind: dict[str, list[str]] = {}
    for path, kind, detail in sorted(found):
        by_kind.setdefault(kind, []).append(f"{path} ({detail})" if detail else path)
    return by_kind


def class_problems(table: SampleTable, dataset: str, root: Path) -> list[str]:
    """Classes without images in a labelled split, folders unknown to the class list, duplicates."""
    problems = []
    classes = table.vocab.get("dish", [])
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
            lines.append(f"  {split}: {len(part)} images, {other_labels(part, table.vocab)}")
            continue
        counts = part["dish"].value_counts().reindex(table.vocab["dish"], fill_value=0)
        lines.append(f"  {split}: {len(part)} images, {int((counts > 0).sum())} classes, per class "
                     f"min {counts.min()} ({counts.idxmin()}) max {counts.max()} ({counts.idxmax()})")
    return lines


def other_labels(part, vocab: dict[str, list[str]]) -> str:
    """``3 masks, no dish labels``: the images of ``part`` that each column the data labels covers."""
    columns = dict.fromkeys(KNOWN_TASKS[task].column for task in vocab if task in KNOWN_TASKS)
    counts = [f"{int(part[c].notna().sum())} {LABEL_NAMES.get(c, c + ' labels')}" for c in columns
              if part[c].notna().any()]
    return ", ".join([*counts, "no dish labels"]) if counts else "unlabelled"


def report(kind: str, items: list[str]) -> None:
    for item in items[:SHOWN]:
        print(f"PROBLEM {kind}: {item}")
    if len(items) > SHOWN:
        print(f"PROBLEM {kind}: ... and {len(items) - SHOWN} more")


def verify(dataset: str, root: Path, decode: bool, workers: int) -> int:
    """Print the report; return the number of problems."""
    root = root.expanduser().resolve()
    try:
        table = sets.load(dataset, str(root))
    except (FileNotFoundError, ValueError) as exc:
        print(f"PROBLEM cannot read {dataset}: {exc}")
        return 1
    print(f"{dataset} at {root}")
    print("\n".join(summary(table)))
    print("".join(f"note: {note}\n" for note in table.notes), end="")
    problems = {"class mismatch": class_problems(table, dataset, root)}
    files = table.frame["image"].tolist() + table.frame["mask"].dropna().tolist()
    problems |= image_problems(files, decode, workers)
    print(f"checked {len(table)} images ({'full decode' if decode else 'open + verify'})")
    for kind, items in problems.items():
        report(kind, items)
    return sum(len(items) for items in problems.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sets.names())
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--decode", action="store_true", help="decode every image fully (slower, catches truncation)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    problems = verify(args.dataset, args.root, args.decode, args.workers)
    print(f"FAILED: {problems} problem(s)" if problems else "OK: no problems found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
