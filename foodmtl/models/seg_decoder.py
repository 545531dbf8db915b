"""Light segmentation decoders over a backbone's multi-scale maps (U-Net and FPN).

Both take the backbone's NCHW maps, fine to coarse, and return class logits
bilinearly upsampled to the input size. Levels are matched by their actual
spatial size, not by the nominal reductions, so backbones whose maps share one
stride (plain ViTs: every map at 1/16) or round odd sizes differently still work.
Every decoder stage has ``width`` channels, whatever the backbone's widths.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.registry import Registry

DECODERS: Registry = Registry("segmentation decoder")


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def upsample_to(x: Tensor, like: Tensor) -> Tensor:
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


@DECODERS.register("unet")
class UNetDecoder(nn.Module):
    """Top-down from the coarsest map: upsample, concatenate the next finer map, two conv-BN-ReLU."""

    def __init__(self, channels: list[int], num_classes: int, width: int):
        super().__init__()
        self.top = conv_bn_relu(channels[-1], width)
        self.blocks = nn.ModuleList(
            nn.Sequential(conv_bn_relu(width + c, width), conv_bn_relu(width, width))
            for c in reversed(channels[:-1])
        )
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, maps: list[Tensor], out_hw: tuple[int, int]) -> Tensor:
        x = self.top(maps[-1])
        for block, skip in zip(self.blocks, reversed(maps[:-1])):
            x = block(torch.cat([upsample_to(x, skip), skip], dim=1))
        return F.interpolate(self.classifier(x), size=tuple(out_hw), mode="bilinear", align_corners=False)


@DECODERS.register("fpn")
class FPNDecoder(nn.Module):
    """FPN (lateral 1x1, top-down sum, 3x3 per level); levels upsampled to the finest and summed."""

    def __init__(self, channels: list[int], num_classes: int, width: int):
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.smooth = nn.ModuleList(conv_bn_relu(width, width) for _ in channels)
        self.head = nn.Sequential(conv_bn_relu(width, width), nn.Conv2d(width, num_classes, 1))

    def forward(self, maps: list[Tensor], out_hw: tuple[int, int]) -> Tensor:
        lateral = [conv(m) for conv, m in zip(self.laterals, maps)]
        for i in range(len(lateral) - 2, -1, -1):
            lateral[i] = lateral[i] + upsample_to(lateral[i + 1], lateral[i])
        levels = [smooth(p) for smooth, p in zip(self.smooth, lateral)]
        merged = levels[0]
        for level in levels[1:]:
            merged = merged + upsample_to(level, merged)
        return F.interpolate(self.head(merged), size=tuple(out_hw), mode="bilinear", align_corners=False)


def build_decoder(kind: str, channels: list[int], reductions: list[int], num_classes: int,
                  width: int = 64) -> nn.Module:
    """A ``kind`` decoder for maps with these channels and reductions (fine to coarse).

    The module is called as ``decoder(maps, out_hw)`` and returns (B, num_classes, *out_hw).
    """
    cls = DECODERS.get(kind)
    if not channels or len(channels) != len(reductions):
        raise ValueError(f"need one reduction per feature map, got channels {channels}, reductions {reductions}")
    if list(reductions) != sorted(reductions):
        raise ValueError(f"feature maps must be ordered fine to coarse, got reductions {reductions}")
    return cls(list(channels), num_classes, width)
