"""Training-data throughput per worker: foodmtl's decode + augment path against torchvision's.

Both read the same generated 512-px JPEGs (SynthFood plates in the Food-101 layout, in a
temporary folder). Ours: FoodDataset (JPEG DCT-scaled decode) + train_transform
(albumentations RandomResizedCrop, flip, colour jitter, normalise); the baseline: torchvision
ImageFolder + the same augmentation in torchvision (RandomResizedCrop with the same scale,
flip, ColorJitter with the same strengths and probability, ToTensor, Normalize), so both do
the same work per image; a third row decodes our JPEGs
at full size, to show what DCT scaling buys. Passes over the files alternate
between the two; images/s is the median pass divided by the number of workers (0 workers:
the main process, one core), and for all workers together.

``--decode-device cuda`` adds a row that decodes on the GPU instead: workers only read the
files' bytes, and the main process decodes each batch with torchvision's batched
``decode_jpeg`` (nvJPEG) and applies the same augmentation to the decoded tensors there;
``--decode-device cpu`` runs the same code on the CPU. ``--pass-images`` makes a pass longer
than the generated files (they are read again, from the page cache as in any epoch after
the first), so many workers can be measured without drawing thousands of images:

    python benchmarks/data.py --size 128 --images 96 --repeats 5
    python benchmarks/data.py --size 224 --images 64 --pass-images 3584 --workers 14 --batch 128 --decode-device cuda
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import datasets
from torchvision import transforms as T
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2

from foodmtl.data.builder import build_tasks
from foodmtl.data.dataset import FoodDataset, collate
from foodmtl.data.sets.food101 import read_food101
from foodmtl.synthfood.generate import generate_synthfood
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, train_transform

DISHES = 8
SCALE = (0.35, 1.0)  # RandomResizedCrop's range in foodmtl.data.transforms.train_transform
JITTER = dict(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)


def ours(root: Path, size: int, scaled_decode: bool = True) -> FoodDataset:
    table = read_food101(root)
    dataset = FoodDataset(table, build_tasks(["dish"], table.vocab), train_transform(size))
    if not scaled_decode:
        dataset.decode_side = 0
    return dataset


def torchvision_baseline(root: Path, size: int) -> datasets.ImageFolder:
    return datasets.ImageFolder(str(root / "images"), T.Compose([
        T.RandomResizedCrop(size, scale=SCALE), T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(**JITTER)], p=0.8),
        T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]))


class FileBytes(Dataset):
    """The files' bytes: the only work left to the workers when decoding is batched. numpy, not
    torch: a batch of many small tensors goes back to the main process through one shared file
    descriptor each, and torch's read_file tensors failed that (EBADF in the worker, the loader
    then waits forever); numpy arrays are pickled through the pipe."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.fromfile(self.paths[i], dtype=np.uint8)


class DeviceDecode:
    """Batches of file bytes -> decoded (nvJPEG on CUDA), augmented, normalised images on ``device``.

    The baseline's augmentation on tensors (torchvision.transforms.v2), image by image: each
    crop has its own size before the resize. Iterating waits for the device at the end, so a
    timed pass includes all of its work.
    """

    def __init__(self, data: DataLoader, size: int, device: torch.device):
        self.data, self.device = data, device
        self.augment = v2.Compose([
            v2.RandomResizedCrop(size, scale=SCALE, antialias=True), v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(**JITTER)], p=0.8), v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __iter__(self):
        for files in self.data:
            images = decode_jpeg([torch.from_numpy(f) for f in files], mode=ImageReadMode.RGB, device=self.device)
            yield torch.stack([self.augment(image) for image in images])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def device_decode(root: Path, size: int, device: str, args: argparse.Namespace) -> DeviceDecode:
    files = FileBytes([path for path, _ in datasets.ImageFolder(str(root / "images")).samples])
    return DeviceDecode(loader(repeated(files, args), args, collate_fn=list), size, torch.device(device))


def repeated(dataset, args: argparse.Namespace):
    """``--pass-images`` samples per pass, going round the files (all of them once by default)."""
    n = args.pass_images or len(dataset)
    return Subset(dataset, [i % len(dataset) for i in range(n)])


def loader(dataset, args: argparse.Namespace, collate_fn=None) -> DataLoader:
    kwargs = {"collate_fn": collate_fn} if collate_fn else {}
    return DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                      persistent_workers=args.workers > 0, **kwargs)


def pass_seconds(data: DataLoader) -> float:
    start = time.perf_counter()
    for _ in data:
        pass
    return time.perf_counter() - start


def rates(loaders: dict[str, DataLoader], images: int, args: argparse.Namespace) -> dict[str, float]:
    """Median images/s of each loader (all workers together), passes interleaved after one warm-up pass each."""
    times: dict[str, list[float]] = {name: [] for name in loaders}
    for repeat in range(args.repeats + 1):
        for name, data in loaders.items():
            seconds = pass_seconds(data)
            if repeat:
                times[name].append(seconds)
    return {name: images / statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="training image size")
    parser.add_argument("--images", type=int, default=96, help=f"JPEGs to generate (at least {2 * DISHES})")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--source-size", type=int, default=512, help="side of the generated JPEGs")
    parser.add_argument("--pass-images", type=int, default=0, help="samples per pass, going round the files "
                        "(default: each file once)")
    parser.add_argument("--decode-device", help="also decode batches on this device (cuda, or cpu to compare)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthfood(Path(tmp) / "synthfood", dishes=DISHES,
                                  per_dish=max(2, args.images // DISHES), size=args.source_size) / "food101"
        ds = ours(root, args.size)
        loaders = {"foodmtl": loader(repeated(ds, args), args, collate),
                   "foodmtl, full-size decode": loader(repeated(ours(root, args.size, scaled_decode=False), args),
                                                       args, collate),
                   "torchvision": loader(repeated(torchvision_baseline(root, args.size), args), args)}
        if args.decode_device:
            loaders[f"decode_jpeg on {args.decode_device}"] = device_decode(root, args.size, args.decode_device, args)
        per_pass = len(repeated(ds, args))
        measured = rates(loaders, per_pass, args)
    print(f"{per_pass} images per pass ({len(ds)} JPEGs of {args.source_size} px) -> {args.size} px, batch "
          f"{args.batch}, workers {args.workers}, median of {args.repeats} passes, torch {torch.__version__}")
    print("| pipeline | images/s per worker | images/s |\n| --- | ---: | ---: |")
    for name, rate in measured.items():
        print(f"| {name} | {rate / max(1, args.workers):.0f} | {rate:.0f} |")
    print(f"ratio foodmtl / torchvision: {measured['foodmtl'] / measured['torchvision']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"files": len(ds), "source_size": args.source_size, "size": args.size, "batch": args.batch,
                       "workers": args.workers, "images_per_pass": per_pass, "repeats": args.repeats,
                       "torch": torch.__version__, "rows": [
                           {"pipeline": name, "images_per_s": rate, "images_per_s_per_worker": rate / max(1, args.workers)}
                           for name, rate in measured.items()]}, f, indent=2)


if __name__ == "__main__":
    main()
