"""The data index at a million images: reader + table + FoodDataset time and memory, DataLoader
worker memory, verify.py without --decode, and the sampler's resume state.

A synthetic Food2K release (``Food2k_complete/<0..1999>/``, ``train/val/test_finetune.txt`` 6:1:3,
``food2k_label2name_en.txt``) is made with every image a hard link to one of a few small JPEGs.
Each size is measured in a fresh process:

- build: ``build_data`` for ``tasks=[dish]`` (reader, table, splits, train + eval FoodDataset),
  seconds and the peak RSS (VmHWM) above the process's RSS after its imports;
- workers: ``train_loader`` with ``--workers`` processes (fork), each of which first reads its
  share of the index (sample ``k::workers``: paths and labels, as ``__getitem__`` does, without
  decoding) and then serves a batch. Per worker: VmRSS (shared pages counted in every process),
  Pss (shared pages split between the processes) and Private_Dirty (pages this worker copied)
  from ``/proc/<pid>/smaps_rollup``. The same for plain Python lists of the same index, for
  contrast: reading a list element writes its reference count, so the pages get copied;
- verify: ``data_prep/verify.py --dataset food2k`` (no ``--decode``), wall seconds;
- sampler: bytes of ``torch.save(sampler.state_dict())`` and seconds to resume mid-epoch.

    python benchmarks/data_index.py --images 100000 1000000 --workers 8
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, no install needed

SOURCE_JPEGS = 32  # ext4 allows 65,000 hard links per file
SPLITS = {"train": 6, "val": 1, "test": 3}  # tenths of every class (Food2K's published ratio)


def make_release(root: Path, images: int, classes: int = 2000) -> Path:
    """The synthetic release, reused when ``root`` already holds one of this size."""
    marker = root / f".images-{images}-classes-{classes}"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    folder = root / "Food2k_complete"
    sources = []
    for k in range(SOURCE_JPEGS):
        pixels = np.random.default_rng(k).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        sources.append(root / f"source-{k}.jpg")
        root.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(sources[-1], "JPEG", quality=90)
    for c in range(classes):
        (folder / str(c)).mkdir(parents=True)
    labels = np.arange(images) % classes
    keys = [f"{label}/{i}.jpg" for i, label in enumerate(labels.tolist())]
    for i, key in enumerate(keys):
        os.link(sources[i % SOURCE_JPEGS], folder / key)
    (folder / "food2k_label2name_en.txt").write_text("".join(f"{c}--dish {c}\n" for c in range(classes)))
    tenth = (np.arange(images) // classes) % 10  # the n-th image of a class goes to split n mod 10
    split_of = np.repeat(list(SPLITS), list(SPLITS.values()))[tenth]
    for split in SPLITS:
        rows = np.flatnonzero(split_of == split)
        (folder / f"{split}_finetune.txt").write_text("".join(f"{keys[i]} {labels[i]}\n" for i in rows))
    marker.touch()
    return root


def rss_kib(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (status) and Pss, Private_Dirty (smaps_rollup) of a process, in KiB."""
    fields = {}
    for name in ("status", "smaps_rollup"):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Pss", "Private_Dirty"):
                fields[key] = int(value.split()[0])
    return fields


def touch_share(worker_id: int) -> None:
    """Read this worker's share of the index, as __getitem__ would, without decoding images."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    index = info.dataset
    for i in range(worker_id, len(index), info.num_workers):
        index.paths[i]
        for column in index.labels.values():
            column[i]


class ListIndex:
    """The same index as plain Python lists, for contrast (the pre-columns FoodDataset layout)."""

    def __init__(self, dataset):
        self.paths = [dataset.paths[i] for i in range(len(dataset))]
        self.labels = {name: [column[i] for i in range(len(dataset))] for name, column in dataset.labels.items()}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key) -> int:
        return 0


def worker_memory(dataset, workers: int) -> dict[str, float]:
    """Median per-worker VmRSS, Pss and Private_Dirty (MiB) once every worker has read its share."""
    from foodmtl.data.builder import train_loader

    from torch.utils.data import default_collate

    loader = train_loader(dataset, batch_size=2, workers=workers)
    if isinstance(dataset, ListIndex):
        loader.collate_fn = default_collate
    loader.worker_init_fn = touch_share
    batches = iter(loader)
    for _ in range(workers):  # batches come round-robin: one from each worker
        next(batches)
    per_worker = [rss_kib(w.pid) for w in batches._workers]
    batches._shutdown_workers()
    return {key: statistics.median(m[key] for m in per_worker) / 1024 for key in ("VmRSS", "Pss", "Private_Dirty")}


def sampler_figures(length: int) -> dict[str, float]:
    import torch

    from foodmtl.data.sampler import ResumableSampler

    sampler = ResumableSampler(length, shuffle=True, seed=3)
    sampler.set_epoch(5, skip=length // 2)
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    start = time.perf_counter()
    resumed = ResumableSampler(length, shuffle=True, seed=0)
    resumed.load_state_dict(sampler.state_dict())
    next(iter(resumed))
    return {"state_bytes": buffer.getbuffer().nbytes, "resume_s": time.perf_counter() - start}


def measure(root: Path, workers: int) -> dict[str, float]:
    """Run in a fresh process: build, worker memory, sampler."""
    from foodmtl.config import DataConfig
    from foodmtl.data.builder import build_data

    from foodmtl.data.sets.food2k import read_food2k

    before = rss_kib()["VmRSS"]
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, so the peak is the build's
    start, cpu = time.perf_counter(), time.process_time()
    read_food2k(root)
    read_s, read_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    bundle = build_data(DataConfig(dataset="food2k", root=str(root), eval_split="val", image_size=32), ["dish"])
    build_s, build_cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = rss_kib()["VmHWM"]
    figures = {"samples": len(bundle.train) + len(bundle.eval), "read_s": read_s, "read_cpu_s": read_cpu,
               "build_s": build_s, "build_cpu_s": build_cpu,
               "build_peak_mib": (peak - before) / 1024, "rss_after_imports_mib": before / 1024}
    figures |= {f"columns_{k}": v for k, v in worker_memory(bundle.train, workers).items()}
    figures |= {f"lists_{k}": v for k, v in worker_memory(ListIndex(bundle.train), workers).items()}
    return figures | sampler_figures(len(bundle.train))


def verify_seconds(root: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (its worker processes included) of verify.py."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(REPO / "data_prep" / "verify.py"), "--dataset", "food2k",
                           "--root", str(root)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"verify.py failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=2000, help="at least 10 images a class fill every split")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--dir", type=Path, help="keep the synthetic releases here (default: a temporary folder)")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.workers)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        rows = []
        for images in args.images:
            root = make_release(base / f"food2k-{images}", images, args.classes)
            proc = subprocess.run([sys.executable, __file__, "--measure", str(root), "--workers", str(args.workers)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"measuring {images} images failed:\n{proc.stderr[-3000:]}")
            figures = json.loads(proc.stdout.strip().splitlines()[-1])
            verified = (math.nan, math.nan) if args.skip_verify else verify_seconds(root)
            figures["verify_s"], figures["verify_cpu_s"] = verified
            rows.append((images, figures))
    print(f"{os.cpu_count()} CPUs, {args.workers} DataLoader workers, load average "
          f"{os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}")
    print("| images | reader s (CPU s) | build s (CPU s) | build peak MiB | verify s (CPU s) | worker RSS MiB | "
          "worker PSS MiB | worker private dirty MiB | lists: worker private dirty MiB | sampler state bytes | "
          "resume s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for images, f in rows:
        print(f"| {images:,} | {f['read_s']:.1f} ({f['read_cpu_s']:.1f}) | "
              f"{f['build_s']:.1f} ({f['build_cpu_s']:.1f}) | {f['build_peak_mib']:.0f} | "
              f"{f['verify_s']:.1f} ({f['verify_cpu_s']:.1f}) | "
              f"{f['columns_VmRSS']:.0f} | {f['columns_Pss']:.0f} | {f['columns_Private_Dirty']:.0f} | "
              f"{f['lists_Private_Dirty']:.0f} | {f['state_bytes']} | {f['resume_s']:.2f} |")
    print(json.dumps(dict(rows)))


if __name__ == "__main__":
    main()
