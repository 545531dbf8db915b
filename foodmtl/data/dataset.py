"""One Dataset class for every source: reads a SampleTable, encodes its labels."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from foodmtl.data.decode import decode_side, load_rgb
from foodmtl.data.table import SampleTable
from foodmtl.tasks import IGNORE_INDEX, SEG_IGNORE, TaskSpec

log = logging.getLogger(__name__)

# The table column each task reads its labels from.
TASK_COLUMN = {"dish": "dish", "category": "category", "cuisine": "cuisine",
               "ingredients": "ingredients", "segmentation": "mask"}

UNREADABLE = (OSError, ValueError, SyntaxError)  # what PIL raises on corrupt/truncated files


class CorruptImageError(RuntimeError):
    """Raised in strict mode for an image that cannot be decoded."""


def encode_labels(table: SampleTable, task: TaskSpec) -> list:
    """Per-row label: class index (multiclass), index list (multilabel), mask path, or None."""
    column = table.frame[TASK_COLUMN[task.name]]
    if task.kind == "segmentation":
        return [m if isinstance(m, str) else None for m in column]
    index = {name: i for i, name in enumerate(task.classes)}
    if task.kind == "multiclass":
        return [index.get(v) if isinstance(v, str) else None for v in column]
    return [[index[i] for i in v if i in index] if isinstance(v, (tuple, list)) else None for v in column]


class FoodDataset(Dataset):
    """Yields ``{"image", "targets", "path"}``, or ``{"skipped": path}`` for an unreadable image."""

    def __init__(self, table: SampleTable, tasks: list[TaskSpec], transform, strict: bool = False):
        self.paths = table.frame["image"].tolist()
        self.tasks = list(tasks)
        self.labels = {t.name: encode_labels(table, t) for t in tasks}
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
        mask_path = self._mask_path(i)
        try:
            # a mask must match the file's full size, so its image is decoded at full size too
            image = load_rgb(path, 0 if mask_path else self.decode_side)
            mask = load_mask(mask_path, image.shape[:2]) if mask_path else None
        except UNREADABLE as exc:
            if self.strict:
                raise CorruptImageError(f"cannot read {path}: {exc}") from exc
            return {"skipped": path}
        out = self.transform(image=image, mask=mask) if mask is not None else self.transform(image=image)
        hw = tuple(out["image"].shape[-2:])
        return {"image": out["image"], "targets": self._targets(i, out.get("mask"), hw), "path": path}

    def _mask_path(self, i: int) -> str | None:
        seg = [t for t in self.tasks if t.kind == "segmentation"]
        return self.labels[seg[0].name][i] if seg else None

    def _targets(self, i: int, mask: Tensor | None, hw: tuple[int, int]) -> dict[str, Tensor]:
        targets = {}
        for task in self.tasks:
            label = self.labels[task.name][i]
            if task.kind == "multiclass":
                targets[task.name] = torch.tensor(IGNORE_INDEX if label is None else label)
            elif task.kind == "multilabel":
                targets[task.name] = multi_hot(label, task.num_classes)
            else:
                targets[task.name] = torch.full(hw, SEG_IGNORE) if mask is None else mask.long()
        return targets


def multi_hot(indices: list[int] | None, n: int) -> Tensor:
    if indices is None:
        return torch.full((n,), float(IGNORE_INDEX))
    vec = torch.zeros(n)
    vec[indices] = 1.0
    return vec


def load_mask(path: str, hw: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as img:
        mask = np.asarray(img)
    if mask.shape[:2] != hw:
        raise ValueError(f"mask {path} is {mask.shape[:2]}, image is {hw}")
    return mask


@dataclass
class Batch:
    images: Tensor
    targets: dict[str, Tensor]
    present: list[str]     # tasks with at least one label in this batch
    skipped: list[str]     # unreadable images dropped from this batch

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
    targets = {k: torch.stack([it["targets"][k] for it in good]) for k in good[0]["targets"]}
    present = [k for k, v in targets.items() if has_labels(v)]
    return Batch(torch.stack([it["image"] for it in good]), targets, present, skipped)


def has_labels(target: Tensor) -> bool:
    if target.dtype.is_floating_point:
        return bool((target[:, 0] != IGNORE_INDEX).any())
    if target.dim() == 1:
        return bool((target != IGNORE_INDEX).any())
    return bool((target != SEG_IGNORE).any())
