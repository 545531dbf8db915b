"""Reader time at full size for VireoFood-172 (``IngreLabel.txt``: 110,241 rows of 353 values) and
UEC-FoodPix Complete (10,000 image/mask pairs, every header opened for the size check).

Synthetic releases in the published layouts: Vireo's lists with the published split sizes and
about 2 % of the values 1 (no images: that reader opens none); UEC's images and masks are hard
links to one JPEG and one RGB PNG of ``--side`` pixels. Times are the median of ``--repeats``
calls in this process (wall and CPU seconds); the first call warms the page cache.

    python benchmarks/readers.py [--vireo-rows 110241] [--uec-pairs 10000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install needed

from foodmtl.data.sets.uecfoodpix import INNER, keep_matching_sizes, read_lists, read_uecfoodpix  # noqa: E402
from foodmtl.data.sets.vireofood172 import read_vireofood172  # noqa: E402

DISHES, INGREDIENTS = 172, 353
VIREO_SPLITS = {"TR.txt": 66071, "VAL.txt": 11016, "TE.txt": 33154}  # the published sizes (sum 110,241)
PATTERNS = 64  # distinct ingredient rows, reused


def make_vireo(root: Path, rows: int) -> Path:
    labels = root / "SplitAndIngreLabel"
    labels.mkdir(parents=True)
    (labels / "FoodList.txt").write_text("".join(f"dish {i}\n" for i in range(1, DISHES + 1)))
    (labels / "IngredientList.txt").write_text("".join(f"ingredient {j}\n" for j in range(1, INGREDIENTS + 1)))
    paths = [f"/{i % DISHES + 1}/{i // DISHES + 1}_{i % 7}.jpg" for i in range(rows)]
    shares = np.array(list(VIREO_SPLITS.values())) / sum(VIREO_SPLITS.values())
    ends = np.round(np.cumsum(shares) * rows).astype(int)
    for name, start, end in zip(VIREO_SPLITS, [0, *ends[:-1]], ends):
        (labels / name).write_text("".join(f"{p}\n" for p in paths[start:end]))
    rng = np.random.default_rng(0)
    patterns = [" ".join(np.where(rng.random(INGREDIENTS) < 0.02, "1", "-1")) for _ in range(PATTERNS)]
    with (labels / "IngreLabel.txt").open("w") as f:
        f.writelines(f"{p} {patterns[i % PATTERNS]}\n" for i, p in enumerate(paths))
    return root


def make_uec(top: Path, pairs: int, side: int) -> Path:
    data = top / "data"
    data.mkdir(parents=True)
    (data / "category.txt").write_text("id\tname\n" + "".join(f"{i}\tfood {i}\n" for i in range(1, 103)))
    test = pairs // 10
    ids = {"train": range(1, pairs - test + 1), "test": range(pairs - test + 1, pairs + 1)}
    (data / "train9000.txt").write_text("".join(f"{i}\n" for i in ids["train"]))
    (data / "test1000.txt").write_text("".join(f"{i}\n" for i in ids["test"]))
    rng = np.random.default_rng(0)
    jpeg, png = top / "source.jpg", top / "source.png"
    Image.fromarray(rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8)).save(jpeg, quality=90)
    mask = np.zeros((side * 3 // 4, side, 3), np.uint8)
    mask[side // 4:side // 2, side // 4:side // 2, 0] = 7
    Image.fromarray(mask).save(png)
    for split, keys in ids.items():
        for folder, source, suffix in (("img", jpeg, ".jpg"), ("mask", png, ".png")):
            out = data / INNER / split / folder
            out.mkdir(parents=True)
            for key in keys:
                (out / f"{key}{suffix}").hardlink_to(source)
    return top


def timed(call, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``call()`` over ``repeats`` runs, after one warm-up."""
    call()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vireo-rows", type=int, default=110241)
    parser.add_argument("--uec-pairs", type=int, default=10000)
    parser.add_argument("--side", type=int, default=512, help="UEC image width (height 3/4 of it)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        vireo = make_vireo(Path(tmp) / "vireo", args.vireo_rows)
        uec = make_uec(Path(tmp) / "uec", args.uec_pairs, args.side)
        frame = read_lists(uec / "data")
        folder = str(uec / "data" / INNER) + "/" + frame["split"]
        frame["image"] = folder + "/img/" + frame["id"] + ".jpg"
        frame["mask"] = folder + "/mask/" + frame["id"] + ".png"
        rows = [
            (f"VireoFood-172 reader, {args.vireo_rows:,} rows", timed(lambda: read_vireofood172(vireo), args.repeats)),
            (f"UEC-FoodPix reader, {args.uec_pairs:,} pairs", timed(lambda: read_uecfoodpix(uec), args.repeats)),
            (f"  of which the size check ({2 * args.uec_pairs:,} headers)",
             timed(lambda: keep_matching_sizes(frame, []), args.repeats)),
        ]
    print("| reader | wall s | CPU s |\n|---|---|---|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
