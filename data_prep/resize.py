"""Write a pre-resized copy of Food-101 / FoodX-251 in the same layout, so the readers work on it.

    python data_prep/resize.py --dataset food101 --root SRC --out DST --short-side 256 [--workers N]

Every listed image gets its short side scaled to N (aspect kept) and is saved as JPEG
quality 90; an image already that small is copied byte for byte (never upscaled). The
list and label files are copied unchanged. Unreadable images are skipped and reported,
and the exit status is then 1. Decoding and resizing a full-size set takes most of the
time, so JPEGs are decoded at reduced scale (PIL ``draft``) across ``--workers`` processes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.data.sets.food101 import read_food101  # noqa: E402
from foodmtl.data.sets.foodx251 import read_foodx251  # noqa: E402
from foodmtl.data.table import SampleTable  # noqa: E402

READERS: dict[str, Callable[[str | Path], SampleTable]] = {"food101": read_food101, "foodx251": read_foodx251}
LIST_FILES = {"food101": ("meta/*",), "foodx251": ("*.txt", "*.csv")}  # copied unchanged
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)  # what PIL raises on bad files
QUALITY = 90


def target_size(size: tuple[int, int], short_side: int) -> tuple[int, int] | None:
    """(width, height) with the short side scaled to ``short_side``; None if that would upscale."""
    scale = short_side / min(size)
    if scale >= 1:
        return None
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize_one(job: tuple[str, str, int]) -> tuple[str, str, str]:
    """(source, "resized" | "copied" | "unreadable", detail)."""
    src, dst, short_side = job
    try:
        with Image.open(src) as image:
            info, size = image.info, target_size(image.size, short_side)
            if size is None:
                image.load()  # a corrupt small file must be reported, not copied
            else:
                small = decode_small(image, size)
    except UNREADABLE as exc:
        return src, "unreadable", str(exc)
    # Errors from here on are the destination's (disk full, permissions): they stop the run.
    partial = f"{dst}.part"  # a killed run must not leave a half-written JPEG under the final name
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if size is None:
        shutil.copyfile(src, partial)
    else:
        small.save(partial, "JPEG", quality=QUALITY, exif=info.get("exif", b""), icc_profile=info.get("icc_profile"))
    os.replace(partial, dst)
    return src, "copied" if size is None else "resized", ""


def decode_small(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    image.draft("RGB", size)  # JPEG: libjpeg decodes at 1/2..1/8 scale, still >= size
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return image.resize(size, Image.Resampling.LANCZOS)


def copy_list_files(dataset: str, root: Path, out: Path) -> None:
    for pattern in LIST_FILES[dataset]:
        for path in root.glob(pattern):
            if path.is_file():
                target = out / path.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def resize_dataset(dataset: str, root: Path, out: Path, short_side: int, workers: int) -> dict[str, list[str]]:
    """Write the copy; return source paths by outcome (resized / copied / unreadable)."""
    root, out = root.expanduser().resolve(), out.expanduser().resolve()
    if out == root:
        raise ValueError(f"--out must differ from --root ({root}): the originals would be overwritten")
    table = READERS[dataset](root)
    copy_list_files(dataset, root, out)
    jobs = [(p, str(out / Path(p).relative_to(root)), short_side) for p in table.frame["image"]]
    outcomes: dict[str, list[str]] = {"resized": [], "copied": [], "unreadable": []}
    step = max(1000, len(jobs) // 20)  # progress lines: about 20 on a full-size set
    with Pool(max(1, workers)) as pool:
        for done, (src, outcome, detail) in enumerate(pool.imap_unordered(resize_one, jobs, chunksize=32), 1):
            outcomes[outcome].append(f"{src} ({detail})" if detail else src)
            if done % step == 0:
                print(f"{done}/{len(jobs)} images", flush=True)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(READERS))
    parser.add_argument("--root", required=True, type=Path, help="the original data set")
    parser.add_argument("--out", required=True, type=Path, help="where the resized copy goes")
    parser.add_argument("--short-side", type=int, default=256)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.short_side < 1:
        parser.error("--short-side must be a positive number of pixels")
    try:
        outcomes = resize_dataset(args.dataset, args.root, args.out, args.short_side, args.workers)
    except (FileNotFoundError, ValueError) as exc:
        print(f"ERROR: {exc}")
        return 1
    for item in outcomes["unreadable"]:
        print(f"SKIPPED unreadable image: {item}")
    print(f"resized {len(outcomes['resized'])}, copied {len(outcomes['copied'])} (short side already "
          f"<= {args.short_side}), skipped {len(outcomes['unreadable'])} unreadable -> {args.out}")
    return 1 if outcomes["unreadable"] else 0


if __name__ == "__main__":
    sys.exit(main())
