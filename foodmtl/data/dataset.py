"""One Dataset class for every source: reads a SampleTable, encodes its labels task kind by kind.

The index (image paths, every task's labels) lives in flat numpy columns
(``foodmtl.data.columns``, ``foodmtl.data.path_array``), so DataLoader workers share it instead of copying it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from foodmtl.data.columns import StringColumn
from foodmtl.data.path_array import PathArray
from foodmtl.data.decode import decode_side, load_rgb
from foodmtl.errors import CorruptImageError, SampleError
from foodmtl.data.table import SampleTable
from foodmtl.tasks import TaskSpec, get_kind

log = logging.getLogger(__name__)

UNREADABLE = (OSError, ValueError, SyntaxError)  # what PIL raises on corrupt/truncated files


class FoodDataset(Dataset):
    """Yields ``{"image", "targets", "labelled" (tasks with a label), "path"}``, or ``{"skipped": reason}`` for a sample that cannot
    be read (the reason names the file)."""

    def __init__(self, table: SampleTable, tasks: list[TaskSpec], transform, strict: bool = False):
        self.paths = path_column(table.frame["image"])
        self.tasks = list(tasks)
        self.kinds = {t.name: get_kind(t.kind) for t in tasks}
        self.labels = {t.name: self.kinds[t.name].labels(t, table.frame) for t in tasks}
        self.transform = transform
        self.decode_side = decode_side(transform)
        self.strict = strict

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """``key`` is an index, or (index, augmentation seed) from ResumableSampler."""
        i, seed = key if isinstance(key, tuple) else (key, None)
        if seed is not None:
            self.transform.set_random_seed(seed)
        path = self.paths[i]
        labels = {t.name: self.labels[t.name][i] for t in self.tasks}
        try:
            # a mask must match the file's full size, so its image is decoded at full size too
            spatial = any(self.kinds[t.name].pixel_labels and labels[t.name] is not None for t in self.tasks)
            image = load_rgb(path, 0 if spatial else self.decode_side)
            extras: dict = {}
            for task in self.tasks:
                labels[task.name], arrays = self.kinds[task.name].load(task, labels[task.name], image.shape[:2])
                extras.update(arrays)
        except SampleError as exc:
            return self._skip(str(exc))
        except UNREADABLE as exc:
            return self._skip(f"cannot read image {path}: {exc}")
        out = self.transform(image=image, **extras)
        targets = {t.name: self.kinds[t.name].target(t, labels[t.name], out) for t in self.tasks}
        labelled = [k for k, v in targets.items() if bool(self.kinds[k].labelled(v[None])[0])]
        return {"image": out["image"], "targets": targets, "labelled": labelled, "path": path}

    def _skip(self, reason: str) -> dict:
        if self.strict:
            raise CorruptImageError(reason)
        return {"skipped": reason}


def path_column(column: pd.Series) -> PathArray | StringColumn:
    """The image paths as flat buffers: a PathArray as it is (no ``str`` per image), else a StringColumn."""
    return column.array if isinstance(column.array, PathArray) else StringColumn(column)


@dataclass
class Batch:
    images: Tensor
    targets: dict[str, Tensor]
    present: list[str]     # tasks with at least one label in this batch
    skipped: list[str]     # why samples were dropped from this batch (each names its file)

    def to(self, device: torch.device, channels_last: bool = False) -> "Batch":
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        images = self.images.to(device, non_blocking=True, memory_format=fmt)
        targets = {k: v.to(device, non_blocking=True) for k, v in self.targets.items()}
        return Batch(images, targets, self.present, self.skipped)


def collate(items: list[dict]) -> Batch:
    """Stack readable samples; list the unreadable ones so the trainer can report them."""
    good = [it for it in items if "skipped" not in it]
    skipped = [it["skipped"] for it in items if "skipped" in it]
    if not good:
        return Batch(torch.empty(0), {}, [], skipped)
    targets = {k: stack([it["targets"][k] for it in good]) for k in good[0]["targets"]}
    present = [k for k in targets if any(k in it["labelled"] for it in good)]
    return Batch(torch.stack([it["image"] for it in good]), targets, present, skipped)


def stack(values: list) -> Tensor:
    """Tensors stacked; a kind's own batch type (instances: ``Instances.stack``) joined by it."""
    return torch.stack(values) if isinstance(values[0], Tensor) else type(values[0]).stack(values)
