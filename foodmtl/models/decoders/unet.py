"""foodmtl's light U-Net: ``width`` channels at every stage, maps at stride 4 and coarser.

Top-down from the coarsest map: a conv-BN-ReLU to ``width`` channels, then per finer map an
up-step, concatenation with that map and two conv-BN-ReLU; a 1x1 classifier at stride 4,
bilinearly upsampled to the input. The up-step is bilinear interpolation (the default, as
before smp arrived, so earlier checkpoints load unchanged) or, with ``upsample: transpose``,
a learned transposed convolution (kernel = stride = the ratio of the two maps' strides, 2x2
between CNN stages): the "up-convolution" of Ronneberger et al. 2015 (U-Net, MICCAI), which
also halves the channels there; here every stage keeps ``width``. Levels are matched by their
actual spatial size, not the nominal strides, so maps that share one stride (plain ViTs, all
at 1/16: no up-step between them) or round odd input sizes differently still work.
smp's U-Net (``smp_unet``) is the heavier form: channels (256, 128, 64, 32, 16) and the
stride-2 map too (docs/segmentation.md compares them).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foodmtl.models.decoders.common import conv_bn_relu, fit, upsample_to
from foodmtl.config.decoders import LightUNetOptions
from foodmtl.models.decoders.registry import DECODERS

MIN_REDUCTION = 4  # a stride-2 level would quadruple the decoder's cost for little gain


def fine_levels(reductions: list[int]) -> list[int]:
    """Indices of the maps at stride 4 and coarser (FPN's P2-P5); the coarsest if none is."""
    return [i for i, r in enumerate(reductions) if r >= MIN_REDUCTION] or [len(reductions) - 1]


@DECODERS.register("unet")
class UNetDecoder(nn.Module):
    def __init__(self, channels: list[int], reductions: list[int], num_classes: int, options: LightUNetOptions):
        super().__init__()
        self.levels = fine_levels(reductions)
        channels = [channels[i] for i in self.levels]
        reductions = [reductions[i] for i in self.levels]
        width = options.width
        self.top = conv_bn_relu(channels[-1], width)
        self.blocks = nn.ModuleList(
            nn.Sequential(conv_bn_relu(width + c, width), conv_bn_relu(width, width))
            for c in reversed(channels[:-1])
        )
        self.transpose = options.upsample == "transpose"
        if self.transpose:  # registered only then: bilinear checkpoints keep their keys
            ratios = [max(1, round(coarse / fine)) for fine, coarse in zip(reductions[:-1], reductions[1:])]
            self.up = nn.ModuleList(nn.ConvTranspose2d(width, width, r, stride=r) if r > 1 else nn.Identity()
                                    for r in reversed(ratios))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, maps: list[Tensor], out_hw: tuple[int, int]) -> Tensor:
        maps = [maps[i] for i in self.levels]
        x = self.top(maps[-1])
        for i, (block, skip) in enumerate(zip(self.blocks, reversed(maps[:-1]))):
            x = fit(self.up[i](x), skip.shape[-2:]) if self.transpose else upsample_to(x, skip)
            x = block(torch.cat([x, skip], dim=1))
        return F.interpolate(self.classifier(x), size=tuple(out_hw), mode="bilinear", align_corners=False)
