"""Albumentations pipelines; image and mask always go through the same geometry.

Training presets (``data.augment``, docs/transfer.md): ``light`` (crop + flip, e.g. for a linear
probe), ``standard`` (the default, unchanged since the first release) and ``strong`` (a
RandAugment-like pick of two operations per image plus random erasing, for fine-tuning a
pretrained network on a small set). Every preset starts with a RandomResizedCrop, which
``decode_side`` reads. Geometric steps are DualTransforms: the mask is cropped, flipped, rotated
and sheared with the image, interpolated nearest (no label is ever blended) and reflected, never
filled, at the borders (a filled border would invent a class). Photometric steps and random
erasing touch the image only, so every pixel keeps its label. timm's RandAugment / RandomErasing
work on PIL images or tensors without masks, hence albumentations here.
"""
from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # never contact PyPI at import time

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NEAREST = cv2.INTER_NEAREST
REFLECT = cv2.BORDER_REFLECT_101


def light(size: int) -> list:
    """Mild crops and a flip: no colour change, so features stay close to what they were pretrained on."""
    return [A.RandomResizedCrop(size=(size, size), scale=(0.6, 1.0), mask_interpolation=NEAREST),
            A.HorizontalFlip(p=0.5)]


def standard(size: int) -> list:
    """Random-resized crop + flip + mild photometric jitter."""
    return [A.RandomResizedCrop(size=(size, size), scale=(0.35, 1.0), mask_interpolation=NEAREST),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.8)]


def strong(size: int) -> list:
    """Wider crops, then two of eight operations (RandAugment's idea: N=2 of a fixed list at one
    moderate magnitude), then random erasing of up to three patches (timm's recipes: p=0.25)."""
    pick = [
        A.Affine(rotate=(-30, 30), shear=(-10, 10), border_mode=REFLECT, mask_interpolation=NEAREST, p=1.0),
        A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05, p=1.0),
        A.RandomGamma(gamma_limit=(70, 150), p=1.0),
        A.Posterize(num_bits=(4, 6), p=1.0),
        A.Equalize(p=1.0),
        A.Sharpen(p=1.0),
        A.GaussianBlur(sigma_limit=(0.3, 1.5), p=1.0),
        A.ToGray(p=1.0),
    ]
    return [A.RandomResizedCrop(size=(size, size), scale=(0.25, 1.0), mask_interpolation=NEAREST),
            A.HorizontalFlip(p=0.5),
            A.SomeOf(pick, n=2, p=1.0),
            A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3),
                            fill="random", fill_mask=None, p=0.25)]


PRESETS = {"light": light, "standard": standard, "strong": strong}


def train_transform(size: int, preset: str = "standard", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    elastic: bool = False) -> A.Compose:
    """The ``preset``'s augmentation (``data.augment``), optionally with an elastic deformation
    (``data.elastic``), then normalisation."""
    steps = PRESETS[preset](size)
    if elastic:
        steps.append(A.ElasticTransform(alpha=30, sigma=6, p=0.3, mask_interpolation=NEAREST))
    return A.Compose(steps + [A.Normalize(mean=mean, std=std), ToTensorV2()])


def eval_transform(size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> A.Compose:
    """Resize the short side to ``size/0.875`` then centre-crop ``size`` (ImageNet protocol)."""
    return A.Compose([
        A.SmallestMaxSize(max_size=eval_side(size), mask_interpolation=NEAREST),
        A.CenterCrop(height=size, width=size),
        A.Normalize(mean=mean, std=std),
        ToTensorV2(),
    ])


def eval_side(size: int) -> int:
    """The short side ``eval_transform(size)`` scales an image to before its centre crop."""
    return int(round(size / 0.875))


def eval_view(original: tuple[int, int], decoded: tuple[int, int], size: int) -> tuple[float, float, float, float]:
    """The square ``eval_transform(size)`` keeps of an image, as (x0, y0, x1, y1) in the pixels of its
    file's (H, W) ``original``, given the (H, W) it was ``decoded`` at (a JPEG draft may be smaller).
    albumentations 2's geometry: SmallestMaxSize scales each side to int(side × scale), CenterCrop
    starts at (side − size) // 2 (``fgeometric.scale``, ``get_center_crop_coords``)."""
    (height, width), (h, w) = original, decoded
    scale = eval_side(size) / min(h, w)
    scaled_h, scaled_w = int(h * scale), int(w * scale)
    top, left = (scaled_h - size) // 2, (scaled_w - size) // 2
    fx, fy = width / scaled_w, height / scaled_h
    return left * fx, top * fy, (left + size) * fx, (top + size) * fy
