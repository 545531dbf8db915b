"""foodmtl's light FPN: ``width`` channels, maps at stride 4 and coarser.

Lateral 1x1 convolutions, top-down sums, a conv-BN-ReLU per level; the levels are upsampled to
the finest and summed, then a conv-BN-ReLU and a 1x1 classifier, bilinearly upsampled to the
input (the semantic branch of Kirillov et al. 2019, Panoptic FPN, with one conv per level).
Kept as it was before smp arrived, so earlier checkpoints load; smp's FPN is ``smp_fpn``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.models.decoders.common import conv_bn_relu, upsample_to
from foodmtl.config.decoders import LightFPNOptions
from foodmtl.models.decoders.registry import DECODERS
from foodmtl.models.decoders.unet import fine_levels


@DECODERS.register("fpn")
class FPNDecoder(nn.Module):
    def __init__(self, channels: list[int], reductions: list[int], num_classes: int, options: LightFPNOptions):
        super().__init__()
        self.levels = fine_levels(reductions)
        channels = [channels[i] for i in self.levels]
        width = options.width
        self.laterals = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.smooth = nn.ModuleList(conv_bn_relu(width, width) for _ in channels)
        self.head = nn.Sequential(conv_bn_relu(width, width), nn.Conv2d(width, num_classes, 1))

    def forward(self, maps: list[Tensor], out_hw: tuple[int, int]) -> Tensor:
        lateral = [conv(maps[i]) for conv, i in zip(self.laterals, self.levels)]
        for i in range(len(lateral) - 2, -1, -1):
            lateral[i] = lateral[i] + upsample_to(lateral[i + 1], lateral[i])
        levels = [smooth(p) for smooth, p in zip(self.smooth, lateral)]
        merged = levels[0]
        for level in levels[1:]:
            merged = merged + upsample_to(level, merged)
        return F.interpolate(self.head(merged), size=tuple(out_hw), mode="bilinear", align_corners=False)
