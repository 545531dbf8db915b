"""A batch of instance annotations: a variable number of boxes and masks per image.

Other kinds' targets are tensors that the shared code stacks, moves, indexes by a labelled mask
and adds a batch axis to (``[None]``). Instance targets cannot be one tensor, so ``Instances``
offers exactly those four operations on a list of per-image dicts, and the shared code needs no
branch for them (``collate`` calls ``stack`` on any target that is not a tensor).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Instances:
    """Per image: ``{"boxes": (N, 4) float xyxy, "labels": (N,) int64 class index, "masks": (N, H, W)
    uint8, "crowd_masks": (M, H, W) uint8, "crowd_labels": (M,) int64}`` in the model's input frame
    (crowd regions: scored as COCO ignores them, never trained on), or None when the image has no
    instance label; ``keys``
    name the images for COCO evaluation (the annotation file and image id)."""

    images: list[dict[str, Tensor] | None]
    keys: list[str | None]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index) -> "Instances":
        if index is None:  # a batch axis: one image already is a batch of one
            return self
        if isinstance(index, int):
            return Instances([self.images[index]], [self.keys[index]])
        picked = torch.as_tensor(index).cpu()
        picked = picked.nonzero().flatten() if picked.dtype == torch.bool else picked
        return Instances([self.images[i] for i in picked.tolist()], [self.keys[i] for i in picked.tolist()])

    def to(self, device, non_blocking: bool = False) -> "Instances":
        moved = [None if image is None else {k: v.to(device, non_blocking=non_blocking) for k, v in image.items()}
                 for image in self.images]
        return Instances(moved, self.keys)

    def labelled(self) -> Tensor:
        return torch.tensor([image is not None for image in self.images], dtype=torch.bool)

    @staticmethod
    def stack(items: list["Instances"]) -> "Instances":
        return Instances([i for item in items for i in item.images], [k for item in items for k in item.keys])
