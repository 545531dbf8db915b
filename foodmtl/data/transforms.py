"""Albumentations pipelines; image and mask always go through the same geometry."""
from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # never contact PyPI at import time

import albumentations as A  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_transform(size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, elastic: bool = False) -> A.Compose:
    """Random-resized crop + flip + mild photometric jitter (masks: nearest)."""
    steps = [
        A.RandomResizedCrop(size=(size, size), scale=(0.35, 1.0), mask_interpolation=0),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.8),
    ]
    if elastic:
        steps.append(A.ElasticTransform(alpha=30, sigma=6, p=0.3, mask_interpolation=0))
    return A.Compose(steps + [A.Normalize(mean=mean, std=std), ToTensorV2()])


def eval_transform(size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> A.Compose:
    """Resize the short side to ``size/0.875`` then centre-crop ``size`` (ImageNet protocol)."""
    return A.Compose([
        A.SmallestMaxSize(max_size=int(round(size / 0.875)), mask_interpolation=0),
        A.CenterCrop(height=size, width=size),
        A.Normalize(mean=mean, std=std),
        ToTensorV2(),
    ])
