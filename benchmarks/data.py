"""Training-data throughput per worker: foodmtl's decode + augment path against torchvision's.

Both read the same generated 512-px JPEGs (SynthFood plates in the Food-101 layout, in a
temporary folder). Ours: FoodDataset (JPEG DCT-scaled decode) + train_transform
(albumentations RandomResizedCrop, flip, colour jitter, normalise); the baseline: torchvision
ImageFolder + the same augmentation in torchvision (RandomResizedCrop with the same scale,
flip, ColorJitter with the same strengths and probability, ToTensor, Normalize), so both do
the same work per image; a third row decodes our JPEGs
at full size, to show what DCT scaling buys. Passes over the files alternate
between the two; images/s is the median pass divided by the number of workers (0 workers:
the main process, one core):

    python benchmarks/data.py --size 128 --images 96 --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from foodmtl.data.builder import build_tasks
from foodmtl.data.dataset import FoodDataset, collate
from foodmtl.data.food101 import read_food101
from foodmtl.data.synthfood import generate_synthfood
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, train_transform

FILE_SIZE = 512
DISHES = 8


def ours(root: Path, size: int, scaled_decode: bool = True) -> FoodDataset:
    table = read_food101(root)
    dataset = FoodDataset(table, build_tasks(["dish"], table.vocab), train_transform(size))
    if not scaled_decode:
        dataset.decode_side = 0
    return dataset


def torchvision_baseline(root: Path, size: int) -> datasets.ImageFolder:
    return datasets.ImageFolder(str(root / "images"), T.Compose([
        T.RandomResizedCrop(size, scale=(0.35, 1.0)), T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)], p=0.8),
        T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]))


def loader(dataset, args: argparse.Namespace, collate_fn=None) -> DataLoader:
    kwargs = {"collate_fn": collate_fn} if collate_fn else {}
    return DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                      persistent_workers=args.workers > 0, **kwargs)


def pass_seconds(data: DataLoader) -> float:
    start = time.perf_counter()
    for _ in data:
        pass
    return time.perf_counter() - start


def per_worker_rates(loaders: dict[str, DataLoader], images: int, args: argparse.Namespace) -> dict[str, float]:
    """Median images/s per worker of each loader, passes interleaved after one warm-up pass each."""
    times: dict[str, list[float]] = {name: [] for name in loaders}
    for repeat in range(args.repeats + 1):
        for name, data in loaders.items():
            seconds = pass_seconds(data)
            if repeat:
                times[name].append(seconds)
    return {name: images / statistics.median(t) / max(1, args.workers) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="training image size")
    parser.add_argument("--images", type=int, default=96, help=f"JPEGs to generate (at least {2 * DISHES})")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthfood(Path(tmp) / "synthfood", dishes=DISHES,
                                  per_dish=max(2, args.images // DISHES), size=FILE_SIZE) / "food101"
        ds = ours(root, args.size)
        loaders = {"foodmtl": loader(ds, args, collate),
                   "foodmtl, full-size decode": loader(ours(root, args.size, scaled_decode=False), args, collate),
                   "torchvision": loader(torchvision_baseline(root, args.size), args)}
        rates = per_worker_rates(loaders, len(ds), args)
    print(f"{len(ds)} JPEGs of {FILE_SIZE} px -> {args.size} px, batch {args.batch}, workers {args.workers}, "
          f"median of {args.repeats} passes, torch {torch.__version__}")
    print("| pipeline | images/s per worker |\n| --- | ---: |")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} |")
    print(f"ratio foodmtl / torchvision: {rates['foodmtl'] / rates['torchvision']:.2f}")


if __name__ == "__main__":
    main()
