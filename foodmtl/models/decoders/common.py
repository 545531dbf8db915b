"""Pieces the decoders share: conv-BN-ReLU, and moving maps or logits between sizes."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``like``."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def fit(x: Tensor, hw: tuple[int, int] | list[int]) -> Tensor:
    """Zero-pad or crop ``x`` at its bottom and right to ``hw``: maps keep their top-left
    alignment, like FCN's crop layer and like padding the input image would."""
    dh, dw = hw[0] - x.shape[-2], hw[1] - x.shape[-1]
    return x if dh == dw == 0 else F.pad(x, (0, dw, 0, dh))
